package infra_test

import (
	"fmt"

	"github.com/cqrskit/cqrskit/sample/infra"
)

// Flags come from the command line or, when not given there, from the
// environment.
func ExampleNewFlagSet() {
	env := map[string]string{
		"CQRSKIT_POSTGRES_URL": "postgres://app:secret@db:5432/shop",
		"CQRSKIT_NATS_URL":     "nats://nats:4222",
		"CQRSKIT_ROLE":         "api",
	}
	fs, flags := infra.NewFlagSet("sample", func(k string) string { return env[k] })
	if err := fs.Parse([]string{"--role=worker", "--low-stock-threshold=3"}); err != nil {
		panic(err)
	}
	cfg, err := flags.Config()
	if err != nil {
		panic(err)
	}
	fmt.Println(cfg.Role, cfg.Addr, cfg.NATSURL, cfg.LowStockThreshold)

	// Invalid combinations are refused with every problem at once.
	fs, flags = infra.NewFlagSet("sample", func(string) string { return "" })
	_ = fs.Parse([]string{"--role=relay", "--addr=8080"})
	_, err = flags.Config()
	fmt.Println(err)
	// Output:
	// worker :8080 nats://nats:4222 3
	// --addr "8080": want host:port or :port
	// --role=relay needs --nats-url or --kafka-brokers: the in-process NATS server lives inside one process, so only --role=all can use it
}
