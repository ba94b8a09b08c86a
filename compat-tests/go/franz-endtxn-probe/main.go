// Command franz-endtxn-probe sends raw transaction requests (franz-go's kmsg) to a broker and
// checks the answers against what Apache Kafka 4.3.1 answers under transaction version 2
// (KIP-890 part 2: EndTxn v5 bumps the producer epoch).
//
//	franz-endtxn-probe BOOTSTRAP
//
// The point it pins down: once a transaction has completed (committed, aborted, or never
// started), an EndTxn abort at the producer's current epoch is legal and bumps the epoch;
// clients rely on it (franz-go aborts "empty" transactions whose produce requests may or may
// not have reached the broker). A retry at the epoch before the bump gets the same answer
// again, an older epoch is fenced, and committing nothing is an invalid state. Each scenario
// uses a new transactional id; each step prints "STEP: GOT", and the program exits 1 if any
// answer differs from Kafka's, 0 with "OK" otherwise.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// How long a step may keep getting CONCURRENT_TRANSACTIONS (the markers of the previous
// transaction are still being written) before it counts as the answer.
const settle = 30 * time.Second

type probe struct {
	cl     *kgo.Client
	txid   string
	id     int64
	failed bool
}

// expect compares one answer with Kafka's and reports it.
func (p *probe) expect(step string, got, want error) {
	mark := "ok"
	if !errors.Is(got, want) && !(got == nil && want == nil) {
		mark = fmt.Sprintf("MISMATCH, Kafka answers %v", want)
		p.failed = true
	}
	fmt.Printf("%s: %v (%s)\n", step, got, mark)
}

// retry sends req until its error is not CONCURRENT_TRANSACTIONS or settle passes.
func retry(cl *kgo.Client, req kmsg.Request, code func(kmsg.Response) int16) (kmsg.Response, error) {
	end := time.Now().Add(settle)
	for {
		resp, err := cl.Request(context.Background(), req)
		if err != nil {
			return nil, err
		}
		e := kerr.ErrorForCode(code(resp))
		if !errors.Is(e, kerr.ConcurrentTransactions) || time.Now().After(end) {
			return resp, e
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *probe) init() error {
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionalID = &p.txid
	req.TransactionTimeoutMillis = 60000
	resp, err := retry(p.cl, req, func(r kmsg.Response) int16 { return r.(*kmsg.InitProducerIDResponse).ErrorCode })
	if err != nil {
		return fmt.Errorf("InitProducerId: %w", err)
	}
	r := resp.(*kmsg.InitProducerIDResponse)
	p.id = r.ProducerID
	if r.ProducerEpoch != 0 {
		return fmt.Errorf("a new transactional id got epoch %d, want 0", r.ProducerEpoch)
	}
	return nil
}

// addOffsets opens a transaction (AddOffsetsToTxn is still sent explicitly under version 2).
func (p *probe) addOffsets(step string, epoch int16, want error) {
	req := kmsg.NewPtrAddOffsetsToTxnRequest()
	req.TransactionalID = p.txid
	req.ProducerID = p.id
	req.ProducerEpoch = epoch
	req.Group = p.txid + "-group"
	_, err := retry(p.cl, req, func(r kmsg.Response) int16 { return r.(*kmsg.AddOffsetsToTxnResponse).ErrorCode })
	p.expect(fmt.Sprintf("%s: AddOffsetsToTxn v%d at epoch %d", step, req.Version, epoch), err, want)
}

// endTxn ends the transaction at epoch; on success the broker's answer must carry wantEpoch.
// Each step names its epoch, so one wrong answer does not shift the later steps.
func (p *probe) endTxn(step string, epoch int16, commit bool, want error, wantEpoch int16) {
	req := kmsg.NewPtrEndTxnRequest()
	req.TransactionalID = p.txid
	req.ProducerID = p.id
	req.ProducerEpoch = epoch
	req.Commit = commit
	what := "abort"
	if commit {
		what = "commit"
	}
	resp, err := retry(p.cl, req, func(r kmsg.Response) int16 { return r.(*kmsg.EndTxnResponse).ErrorCode })
	step = fmt.Sprintf("%s: EndTxn v%d %s at epoch %d", step, req.Version, what, epoch)
	p.expect(step, err, want)
	if err == nil && resp != nil {
		r := resp.(*kmsg.EndTxnResponse)
		if r.ProducerEpoch != wantEpoch {
			fmt.Printf("%s: answered epoch %d (MISMATCH, Kafka answers %d)\n", step, r.ProducerEpoch, wantEpoch)
			p.failed = true
		}
	}
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: franz-endtxn-probe BOOTSTRAP")
		os.Exit(2)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(os.Args[1]))
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
	defer cl.Close()
	failed := false
	for _, scenario := range []struct {
		name string
		run  func(p *probe)
	}{
		{"nothing in the transaction", func(p *probe) {
			p.endTxn("commit", 0, true, kerr.InvalidTxnState, 0)
			p.endTxn("abort", 0, false, nil, 1)
			p.endTxn("abort again at the new epoch", 1, false, nil, 2)
			p.endTxn("stale epoch", 0, false, kerr.ProducerFenced, 0)
		}},
		{"a committed transaction", func(p *probe) {
			p.addOffsets("open", 0, nil)
			p.endTxn("commit", 0, true, nil, 1)
			p.endTxn("retry of the commit", 0, true, nil, 1)
			p.addOffsets("stale epoch", 0, kerr.ProducerFenced)
			p.endTxn("abort with nothing in it at the new epoch", 1, false, nil, 2)
		}},
		{"an aborted transaction", func(p *probe) {
			p.addOffsets("open", 0, nil)
			p.endTxn("abort", 0, false, nil, 1)
			p.endTxn("retry of the abort", 0, false, nil, 1)
			p.endTxn("abort with nothing in it at the new epoch", 1, false, nil, 2)
			p.addOffsets("next transaction", 2, nil)
			p.endTxn("commit it", 2, true, nil, 3)
		}},
	} {
		fmt.Printf("--- %s\n", scenario.name)
		p := &probe{cl: cl, txid: fmt.Sprintf("endtxn-probe-%d", time.Now().UnixNano())}
		if err := p.init(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		scenario.run(p)
		failed = failed || p.failed
	}
	if failed {
		fmt.Println("FAIL: answers differ from Kafka 4.3.1's")
		os.Exit(1)
	}
	fmt.Println("OK")
}
