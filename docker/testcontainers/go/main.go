// Command tc-kafka runs Testcontainers for Go's modules/kafka against Sluice's image.
//
//	tc-kafka IMAGE
//
// It starts the image with the module's own start-up (kafka.Run), then produces keyed
// records through the mapped port with sarama and consumes them back in a consumer group.
// It prints "start: SECONDS" (the module's start, up to its readiness log line) and
// "ok: N keyed records" on success, and exits non-zero otherwise. The caller points
// DOCKER_HOST at the engine and sets TESTCONTAINERS_RYUK_DISABLED=true when no reaper
// image can be pulled.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/modules/kafka"
)

type record struct{ key, value string }

var records = []record{
	{"user-1", "login ok"},
	{"user-2", "h\u00e9llo w\u00f6rld \u2713"},
	{"user-1", "tab\tseparated\tvalue"},
	{"user-3", `{"json": [1, 2, 3]}`},
}

const deadline = 60 * time.Second

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: tc-kafka IMAGE")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "tc-kafka:", err)
		os.Exit(1)
	}
}

func run(image string) (err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*deadline)
	defer cancel()
	t0 := time.Now()
	ctr, err := kafka.Run(ctx, image)
	defer func() {
		if terr := testcontainers.TerminateContainer(ctr); terr != nil {
			err = errors.Join(err, fmt.Errorf("terminate: %w", terr))
		}
	}()
	if err != nil {
		return err
	}
	fmt.Printf("start: %.2f\n", time.Since(t0).Seconds())
	brokers, err := ctr.Brokers(ctx)
	if err != nil {
		return fmt.Errorf("brokers: %w", err)
	}
	topic := "tc-go"

	pc := sarama.NewConfig()
	pc.Producer.Return.Successes = true
	pc.Producer.RequiredAcks = sarama.WaitForAll
	producer, err := sarama.NewSyncProducer(brokers, pc)
	if err != nil {
		return fmt.Errorf("producer via %v: %w", brokers, err)
	}
	for _, r := range records {
		msg := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(r.key), Value: sarama.StringEncoder(r.value)}
		if _, _, err := producer.SendMessage(msg); err != nil {
			_ = producer.Close()
			return fmt.Errorf("produce to %s: %w", topic, err)
		}
	}
	if err := producer.Close(); err != nil {
		return fmt.Errorf("producer close: %w", err)
	}

	cc := sarama.NewConfig()
	cc.Consumer.Offsets.Initial = sarama.OffsetOldest
	group, err := sarama.NewConsumerGroup(brokers, topic+"-group", cc)
	if err != nil {
		return fmt.Errorf("consumer group via %v: %w", brokers, err)
	}
	defer group.Close()
	h := &handler{want: len(records), done: make(chan struct{})}
	cctx, ccancel := context.WithTimeout(ctx, deadline)
	defer ccancel()
	go func() {
		for cctx.Err() == nil {
			if err := group.Consume(cctx, []string{topic}, h); err != nil && cctx.Err() == nil {
				fmt.Fprintln(os.Stderr, "tc-kafka: consume:", err)
				return
			}
		}
	}()
	select {
	case <-h.done:
	case <-cctx.Done():
		return fmt.Errorf("consumed %q within %v, produced %q", h.records(), deadline, records)
	}
	got := h.records()
	if !reflect.DeepEqual(got, records) {
		return fmt.Errorf("consumed %q, produced %q", got, records)
	}
	fmt.Printf("ok: %d keyed records through %v\n", len(got), brokers)
	return nil
}

// handler collects records until it has want of them, then closes done.
type handler struct {
	want int
	done chan struct{}
	mu   sync.Mutex
	got  []record
}

// records returns a copy of what has been consumed so far.
func (h *handler) records() []record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]record(nil), h.got...)
}

func (h *handler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *handler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for msg := range c.Messages() {
		h.mu.Lock()
		h.got = append(h.got, record{string(msg.Key), string(msg.Value)})
		n := len(h.got)
		h.mu.Unlock()
		s.MarkMessage(msg, "")
		if n == h.want {
			close(h.done)
			return nil
		}
	}
	return nil
}
