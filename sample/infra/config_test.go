package infra_test

import (
	"flag"
	"strings"
	"testing"

	"github.com/cqrskit/cqrskit/sample/infra"
)

func parse(args []string, env map[string]string) (infra.Config, error) {
	fs, flags := infra.NewFlagSet("sample", func(k string) string { return env[k] })
	fs.SetOutput(&strings.Builder{})
	if err := fs.Parse(args); err != nil {
		return infra.Config{}, err
	}
	return flags.Config()
}

func TestFlagDefaults(t *testing.T) {
	cfg, err := parse(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Role != infra.RoleAll || cfg.Addr != ":8080" || cfg.DataDir != "data" || cfg.PostgresURL != "" ||
		cfg.NATSURL != "" || cfg.KafkaBrokers != nil || cfg.LowStockThreshold != 5 {
		t.Fatalf("defaults: %+v", cfg)
	}
}

func TestFlagsWinOverEnv(t *testing.T) {
	env := map[string]string{"CQRSKIT_ADDR": ":9000", "CQRSKIT_DATA_DIR": "/var/lib/x", "CQRSKIT_KAFKA_BROKERS": "k1:9092, k2:9092"}
	cfg, err := parse([]string{"--addr=:7000"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != ":7000" || cfg.DataDir != "/var/lib/x" || strings.Join(cfg.KafkaBrokers, ",") != "k1:9092,k2:9092" {
		t.Fatalf("%+v", cfg)
	}
}

func TestStoreAcceptsWhatItNames(t *testing.T) {
	env := map[string]string{"CQRSKIT_STORE": "postgres", "CQRSKIT_POSTGRES_URL": "postgres://u:p@db:5432/app"}
	if cfg, err := parse(nil, env); err != nil || cfg.Store != infra.StorePostgres || cfg.PostgresURL == "" {
		t.Errorf("CQRSKIT_STORE=postgres with a URL: %+v, %v", cfg, err)
	}
	if cfg, err := parse([]string{"--store=sqlite"}, nil); err != nil || cfg.Store != infra.StoreSQLite {
		t.Errorf("--store=sqlite: %+v, %v", cfg, err)
	}
}

func TestEveryFlagHasAnEnvVar(t *testing.T) {
	fs, _ := infra.NewFlagSet("sample", func(string) string { return "" })
	fs.VisitAll(func(f *flag.Flag) {
		if _, ok := infra.Env[f.Name]; !ok && f.Name != "probe" {
			t.Errorf("flag --%s has no environment variable", f.Name)
		}
	})
	for name := range infra.Env {
		if fs.Lookup(name) == nil {
			t.Errorf("environment variable %s names no flag --%s", infra.Env[name], name)
		}
	}
}

func TestInvalidConfig(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--role=boss"}, `--role "boss"`},
		{[]string{"--role=worker"}, "needs --nats-url or --kafka-brokers"},
		{[]string{"--addr=localhost"}, "--addr"},
		{[]string{"--postgres-url=mysql://x"}, "--postgres-url"},
		{[]string{"--store=postgres"}, "--store=postgres and no --postgres-url"},
		{[]string{"--store=sqlite", "--postgres-url=postgres://h/db"}, "choose one store"},
		{[]string{"--store=mysql"}, `--store "mysql"`},
		{[]string{"--nats-url=nats://a:4222", "--kafka-brokers=b:9092"}, "choose one broker"},
		{[]string{"--kafka-brokers=nohost"}, "--kafka-brokers"},
		{[]string{"--nats-url=:::"}, "--nats-url"},
		{[]string{"--low-stock-threshold=-1"}, "--low-stock-threshold"},
		{[]string{"--low-stock-threshold=many"}, "--low-stock-threshold"},
		{[]string{"--log-level=loud"}, "--log-level"},
	}
	for _, tt := range tests {
		_, err := parse(tt.args, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want one mentioning %q", tt.args, err, tt.want)
		}
	}
	// Every problem at once.
	_, err := parse([]string{"--role=boss", "--addr=x", "--log-level=loud"}, nil)
	if err == nil || strings.Count(err.Error(), "\n") != 2 {
		t.Errorf("want three problems, got %v", err)
	}
}
