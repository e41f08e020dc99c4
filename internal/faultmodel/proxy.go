package faultmodel

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ProxyFaults are per-frame probabilities of the faults a Proxy injects on
// the data subjects while its Dice are not stopped.
type ProxyFaults struct {
	// DropPub drops a client's PUB/HPUB frame: the message is lost before
	// the server stores it, and its ack never comes.
	DropPub float64
	// DropAck drops the server's MSG/HMSG frame carrying the publish ack
	// of a data message: the server stored it, the client never learns.
	DropAck float64
	// Delay holds a data frame (and the frames behind it) for up to
	// MaxDelay.
	Delay    float64
	MaxDelay time.Duration
}

// Proxy is a TCP proxy between NATS clients and a NATS server that parses
// the protocol enough to drop or delay the frames of data publishes, by
// seed. Frames on other subjects (the JetStream API, consumers' pulls)
// pass untouched.
type Proxy struct {
	target string
	prefix string // data subjects start with it
	dice   *Dice
	faults ProxyFaults
	ln     net.Listener

	mu      sync.Mutex
	replies map[string]string // reply subject of a data publish in flight -> what it published
	conns   []net.Conn
	log     []string

	DroppedPubs, DroppedAcks, Delayed atomic.Int64
}

// StartProxy listens on a local port and forwards each connection to the
// NATS server at target (host:port or nats://host:port). Data publishes
// are those whose subject starts with prefix.
func StartProxy(target, prefix string, dice *Dice, faults ProxyFaults) (*Proxy, error) {
	target = strings.TrimPrefix(target, "nats://")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fault proxy: listen: %w", err)
	}
	p := &Proxy{target: target, prefix: prefix, dice: dice, faults: faults, ln: ln, replies: map[string]string{}}
	go p.accept()
	return p, nil
}

// URL is the proxy's client URL.
func (p *Proxy) URL() string { return "nats://" + p.ln.Addr().String() }

// Close stops listening and closes every proxied connection.
func (p *Proxy) Close() {
	_ = p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go p.pipe(c, s, true)
		go p.pipe(s, c, false)
	}
}

// pipe copies frames from src to dst; fromClient tells the direction.
func (p *Proxy) pipe(src, dst net.Conn, fromClient bool) {
	defer src.Close()
	defer dst.Close()
	r := bufio.NewReaderSize(src, 64<<10)
	w := bufio.NewWriterSize(dst, 64<<10)
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				// A control line this long is not NATS; pass it on.
				_, _ = w.Write(line)
				continue
			}
			_, _ = w.Write(line)
			_ = w.Flush()
			return
		}
		line = append([]byte(nil), line...)
		frame, keep, err := p.frame(r, line, fromClient)
		if err != nil {
			return
		}
		if keep {
			if _, err := w.Write(frame); err != nil {
				return
			}
		}
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return
			}
		}
	}
}

// frame reads the rest of the frame that starts with line (a payload for
// PUB, HPUB, MSG and HMSG) and decides whether to forward it.
func (p *Proxy) frame(r *bufio.Reader, line []byte, fromClient bool) ([]byte, bool, error) {
	fields := strings.Fields(string(line))
	if len(fields) == 0 {
		return line, true, nil
	}
	op := strings.ToUpper(fields[0])
	var subject, reply string
	var size int
	var err error
	switch {
	case fromClient && op == "PUB" && (len(fields) == 3 || len(fields) == 4):
		subject = fields[1]
		if len(fields) == 4 {
			reply = fields[2]
		}
		size, err = strconv.Atoi(fields[len(fields)-1])
	case fromClient && op == "HPUB" && (len(fields) == 4 || len(fields) == 5):
		subject = fields[1]
		if len(fields) == 5 {
			reply = fields[2]
		}
		size, err = strconv.Atoi(fields[len(fields)-1])
	case !fromClient && op == "MSG" && (len(fields) == 4 || len(fields) == 5):
		subject = fields[1]
		size, err = strconv.Atoi(fields[len(fields)-1])
	case !fromClient && op == "HMSG" && (len(fields) == 5 || len(fields) == 6):
		subject = fields[1]
		size, err = strconv.Atoi(fields[len(fields)-1])
	default:
		return line, true, nil
	}
	if err != nil || size < 0 {
		return nil, false, fmt.Errorf("fault proxy: bad frame %q", bytes.TrimSpace(line))
	}
	payload := make([]byte, size+2) // and the trailing CRLF
	if _, err := io.ReadFull(r, payload); err != nil {
		return nil, false, err
	}
	frame := append(line, payload...)
	data := false
	if fromClient {
		data = strings.HasPrefix(subject, p.prefix)
		if data {
			what := describe(subject, payload)
			if p.dice.Roll(p.faults.DropPub) {
				p.DroppedPubs.Add(1)
				p.note("dropped the publish of " + what)
				return nil, false, nil
			}
			if reply != "" {
				p.mu.Lock()
				p.replies[reply] = what
				p.mu.Unlock()
			}
		}
	} else {
		p.mu.Lock()
		what, ok := p.replies[subject]
		delete(p.replies, subject)
		p.mu.Unlock()
		data = ok
		if data && p.dice.Roll(p.faults.DropAck) {
			p.DroppedAcks.Add(1)
			p.note("dropped the ack of " + what)
			return nil, false, nil
		}
	}
	if data && p.dice.Roll(p.faults.Delay) {
		p.Delayed.Add(1)
		time.Sleep(p.dice.Between(0, p.faults.MaxDelay))
	}
	return frame, true, nil
}

func (p *Proxy) note(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log = append(p.log, time.Now().Format("15:04:05.000")+" "+s)
}

// Log lists the frames the proxy dropped, oldest first.
func (p *Proxy) Log() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.log...)
}

// describe names a data publish by its subject and the relay's stream and
// version headers, when present.
func describe(subject string, payload []byte) string {
	out := subject
	for _, h := range []string{"Cqrs-Stream-Version: "} {
		if i := bytes.Index(payload, []byte(h)); i >= 0 {
			rest := payload[i+len(h):]
			if j := bytes.IndexByte(rest, '\r'); j >= 0 {
				out += " version " + string(rest[:j])
			}
		}
	}
	return out
}
