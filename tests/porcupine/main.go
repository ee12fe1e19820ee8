// Command porcupinecheck judges balance histories with porcupine (a real linearizability checker), as a
// cross-check of walletchaos/checks/read_consistency.py (tests/test_read_consistency_porcupine.py).
//
// stdin: JSON list of histories; each history is a list of ops
//
//	{"account": "a1", "kind": "write"|"read", "value": 123, "call": µs, "return": µs}
//
// Each account's balance is a register: a write sets it (a ledger entry, its balance_after, at its
// commit instant as a tiny interval), a read must return it. The register starts at each account's
// "initial" value given as a write at call=return=0 by the caller. stdout: JSON list of booleans, one
// per history: linearizable or not.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/anishathalye/porcupine"
)

type op struct {
	Account string `json:"account"`
	Kind    string `json:"kind"`
	Value   int64  `json:"value"`
	Call    int64  `json:"call"`
	Return  int64  `json:"return"`
}

type input struct {
	Kind    string
	Value   int64
	Account string
}

var registerModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byAccount := map[string][]porcupine.Operation{}
		var order []string
		for _, o := range history {
			a := o.Input.(input).Account
			if _, ok := byAccount[a]; !ok {
				order = append(order, a)
			}
			byAccount[a] = append(byAccount[a], o)
		}
		out := make([][]porcupine.Operation, 0, len(order))
		for _, a := range order {
			out = append(out, byAccount[a])
		}
		return out
	},
	Init: func() interface{} { return int64(0) },
	Step: func(state, in, output interface{}) (bool, interface{}) {
		i := in.(input)
		if i.Kind == "write" {
			return true, i.Value
		}
		return output.(int64) == state.(int64), state
	},
}

func main() {
	var histories [][]op
	if err := json.NewDecoder(os.Stdin).Decode(&histories); err != nil {
		fmt.Fprintln(os.Stderr, "porcupinecheck: bad input:", err)
		os.Exit(2)
	}
	results := make([]bool, len(histories))
	for h, ops := range histories {
		history := make([]porcupine.Operation, 0, len(ops))
		for n, o := range ops {
			history = append(history, porcupine.Operation{ClientId: n, Input: input{o.Kind, o.Value, o.Account},
				Call: o.Call, Output: o.Value, Return: o.Return})
		}
		res := porcupine.CheckOperationsTimeout(registerModel, history, 60*time.Second)
		if res == porcupine.Unknown {
			fmt.Fprintf(os.Stderr, "porcupinecheck: history %d timed out\n", h)
			os.Exit(3)
		}
		results[h] = res == porcupine.Ok
	}
	if err := json.NewEncoder(os.Stdout).Encode(results); err != nil {
		os.Exit(2)
	}
}
