// Command sarama-txn runs Sarama's transactional producer and a read_committed consumer
// against a Kafka broker, and checks that only committed records are read.
//
//	sarama-txn BOOTSTRAP TOPIC TXN_ID GROUP
//
// TOPIC must exist with three partitions and be empty. The program commits one transaction
// (records "commit-P-I" on every partition P, plus the offset 5 of partition 0 for GROUP
// through AddOffsetsToTxn), aborts a second ("abort-P-I", offset 10 for GROUP), then writes a
// non-transactional "end" record to each partition. A read_committed consumer must read the
// committed records and then "end" on each partition with nothing in between; a
// read_uncommitted one must also read the aborted records; GROUP's committed offset must be 5.
// It prints "OK" and exits 0 on success, and exits 1 with the reason otherwise.
package main

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"time"

	"github.com/IBM/sarama"
)

const (
	partitions   = 3
	perPartition = 4
	deadline     = 40 * time.Second
)

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: sarama-txn BOOTSTRAP TOPIC TXN_ID GROUP")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2], os.Args[3], os.Args[4]); err != nil {
		fmt.Fprintln(os.Stderr, "sarama-txn: FAIL:", err)
		os.Exit(1)
	}
	fmt.Println("OK")
}

// config is what every client here uses: the Kafka 4.0 protocol (Sarama has no ApiVersions
// negotiation for most requests, so this picks the request versions) and a short timeout.
func config() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V4_0_0_0
	cfg.ClientID = "sluice-compat-sarama"
	cfg.Net.DialTimeout = 10 * time.Second
	cfg.Metadata.Retry.Max = 20
	return cfg
}

func records(topic, tag string) []*sarama.ProducerMessage {
	var msgs []*sarama.ProducerMessage
	for p := int32(0); p < partitions; p++ {
		for i := 0; i < perPartition; i++ {
			msgs = append(msgs, &sarama.ProducerMessage{
				Topic:     topic,
				Partition: p,
				Key:       sarama.StringEncoder(fmt.Sprintf("%s-%d-%d", tag, p, i)),
				Value:     sarama.StringEncoder(fmt.Sprintf("%s value %d %d", tag, p, i)),
			})
		}
	}
	return msgs
}

func run(bootstrap, topic, txnID, group string) error {
	cfg := config()
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Producer.Transaction.ID = txnID
	cfg.Net.MaxOpenRequests = 1
	producer, err := sarama.NewSyncProducer([]string{bootstrap}, cfg)
	if err != nil {
		return fmt.Errorf("transactional producer: %w", err)
	}
	defer producer.Close()

	for _, txn := range []struct {
		tag    string
		offset int64
		commit bool
	}{{"commit", 5, true}, {"abort", 10, false}} {
		if err := producer.BeginTxn(); err != nil {
			return fmt.Errorf("BeginTxn (%s): %w", txn.tag, err)
		}
		if err := producer.SendMessages(records(topic, txn.tag)); err != nil {
			var perRecord sarama.ProducerErrors
			if errors.As(err, &perRecord) && len(perRecord) > 0 {
				err = fmt.Errorf("%w; first: %w", err, perRecord[0].Err)
			}
			return fmt.Errorf("SendMessages (%s): %w", txn.tag, err)
		}
		offsets := map[string][]*sarama.PartitionOffsetMetadata{
			topic: {{Partition: 0, Offset: txn.offset}},
		}
		if err := producer.AddOffsetsToTxn(offsets, group); err != nil {
			return fmt.Errorf("AddOffsetsToTxn (%s): %w", txn.tag, err)
		}
		if txn.commit {
			err = producer.CommitTxn()
		} else {
			err = producer.AbortTxn()
		}
		if err != nil {
			return fmt.Errorf("end of transaction %s: %w (status %v)", txn.tag, err, producer.TxnStatus())
		}
	}

	// A plain record after the transactions marks the end of each partition for the readers.
	plain := config()
	plain.Producer.Return.Successes = true
	plain.Producer.Partitioner = sarama.NewManualPartitioner
	endProducer, err := sarama.NewSyncProducer([]string{bootstrap}, plain)
	if err != nil {
		return fmt.Errorf("plain producer: %w", err)
	}
	defer endProducer.Close()
	for p := int32(0); p < partitions; p++ {
		_, _, err := endProducer.SendMessage(&sarama.ProducerMessage{
			Topic: topic, Partition: p, Key: sarama.StringEncoder("end"), Value: sarama.StringEncoder("end"),
		})
		if err != nil {
			return fmt.Errorf("end record to partition %d: %w", p, err)
		}
	}

	want := func(tags ...string) map[int32][]string {
		m := map[int32][]string{}
		for p := int32(0); p < partitions; p++ {
			for _, tag := range tags {
				for i := 0; i < perPartition; i++ {
					m[p] = append(m[p], fmt.Sprintf("%s-%d-%d", tag, p, i))
				}
			}
			m[p] = append(m[p], "end")
		}
		return m
	}
	if err := readBack(bootstrap, topic, sarama.ReadCommitted, want("commit")); err != nil {
		return fmt.Errorf("read_committed: %w", err)
	}
	if err := readBack(bootstrap, topic, sarama.ReadUncommitted, want("commit", "abort")); err != nil {
		return fmt.Errorf("read_uncommitted: %w", err)
	}
	return checkGroupOffset(bootstrap, topic, group, 5)
}

// readBack reads each partition from the oldest offset until its "end" record and compares
// the keys it saw with want.
func readBack(bootstrap, topic string, level sarama.IsolationLevel, want map[int32][]string) error {
	cfg := config()
	cfg.Consumer.IsolationLevel = level
	cfg.Consumer.Return.Errors = true
	consumer, err := sarama.NewConsumer([]string{bootstrap}, cfg)
	if err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	defer consumer.Close()
	got := map[int32][]string{}
	for p := int32(0); p < partitions; p++ {
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			return fmt.Errorf("ConsumePartition %d: %w", p, err)
		}
		timeout := time.After(deadline)
	read:
		for {
			select {
			case m := <-pc.Messages():
				got[p] = append(got[p], string(m.Key))
				if string(m.Key) == "end" {
					break read
				}
			case e := <-pc.Errors():
				pc.Close()
				return fmt.Errorf("partition %d: %w", p, e)
			case <-timeout:
				pc.Close()
				return fmt.Errorf("partition %d: no end record within %v; read %v", p, deadline, got[p])
			}
		}
		pc.Close()
	}
	if !reflect.DeepEqual(got, want) {
		return fmt.Errorf("read %v, want %v", got, want)
	}
	return nil
}

// checkGroupOffset asks for the group's committed offset of partition 0 with OffsetFetch.
func checkGroupOffset(bootstrap, topic, group string, want int64) error {
	admin, err := sarama.NewClusterAdmin([]string{bootstrap}, config())
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	defer admin.Close()
	end := time.Now().Add(deadline)
	for {
		resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0}})
		var got int64 = -2
		if err == nil {
			if b := resp.GetBlock(topic, 0); b != nil {
				if b.Err != sarama.ErrNoError {
					err = b.Err
				}
				got = b.Offset
			}
		}
		if err == nil && got == want {
			return nil
		}
		// The broker answers UNSTABLE_OFFSET_COMMIT while the commit's markers are pending.
		if time.Now().After(end) {
			return errors.Join(fmt.Errorf("group %s: committed offset %d, want %d", group, got, want), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
