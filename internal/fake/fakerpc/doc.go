// Package fakerpc is what every fake JSON-RPC server of internal/fake sits
// behind and shares: switchable Faults (stall, HTTP status, garbage) in front
// of the server, a Recorder that logs each Call the faults let through, the
// Error a method returns with a JSON-RPC code, and geth's block encoding
// (MarshalBlock).
//
// It is not a JSON-RPC server or client; the fakes use go-ethereum's rpc
// package for that. It is not for production use.
package fakerpc
