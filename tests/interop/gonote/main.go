// Signs and opens C2SP signed notes with golang.org/x/mod/sumdb/note, the Go team's reference
// implementation (Debian's golang-golang-x-mod-dev, BSD-3-Clause): an implementation Tenderproof
// did not write. Built by tests/interop/test_go_note.py in GOPATH mode from Debian's sources.
//
// stdin, one JSON request:
//   {"op": "generate", "name": N}                 -> {"skey", "vkey"}  (keys made by Go)
//   {"op": "sign", "skeys": [...], "text": T}      -> {"note"}
//   {"op": "open", "vkeys": [...], "note": M}      -> {"ok": true, "text", "verified": [names],
//                                                     "unverified": [names]} or {"ok": false, "error"}
package main

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"

	"golang.org/x/mod/sumdb/note"
)

type request struct {
	Op    string   `json:"op"`
	Name  string   `json:"name"`
	SKeys []string `json:"skeys"`
	VKeys []string `json:"vkeys"`
	Text  string   `json:"text"`
	Note  string   `json:"note"`
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

func main() {
	var q request
	if err := json.NewDecoder(os.Stdin).Decode(&q); err != nil {
		fail(err)
	}
	out := map[string]interface{}{}
	switch q.Op {
	case "generate":
		skey, vkey, err := note.GenerateKey(rand.Reader, q.Name)
		if err != nil {
			fail(err)
		}
		out["skey"], out["vkey"] = skey, vkey
	case "sign":
		var signers []note.Signer
		for _, k := range q.SKeys {
			s, err := note.NewSigner(k)
			if err != nil {
				fail(err)
			}
			signers = append(signers, s)
		}
		msg, err := note.Sign(&note.Note{Text: q.Text}, signers...)
		if err != nil {
			fail(err)
		}
		out["note"] = string(msg)
	case "open":
		var verifiers []note.Verifier
		for _, k := range q.VKeys {
			v, err := note.NewVerifier(k)
			if err != nil {
				fail(err)
			}
			verifiers = append(verifiers, v)
		}
		n, err := note.Open([]byte(q.Note), note.VerifierList(verifiers...))
		if err != nil {
			out["ok"], out["error"] = false, err.Error()
			break
		}
		verified, unverified := []string{}, []string{}
		for _, s := range n.Sigs {
			verified = append(verified, s.Name)
		}
		for _, s := range n.UnverifiedSigs {
			unverified = append(unverified, s.Name)
		}
		out["ok"], out["text"], out["verified"], out["unverified"] = true, n.Text, verified, unverified
	default:
		fail(fmt.Errorf("unknown op %q", q.Op))
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fail(err)
	}
}
