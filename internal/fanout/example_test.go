package fanout_test

import (
	"context"
	"fmt"
	"time"

	"github.com/lightcl/lightcl/internal/fanout"
)

// Example asks three mirrors for a value at once, each for at most 50 ms,
// and takes the first good answer; Stop cancels the mirror still stalling.
func Example() {
	mirrors := map[string]func(context.Context) (string, error){
		"stalled": func(ctx context.Context) (string, error) { <-ctx.Done(); return "", ctx.Err() },
		"down":    func(context.Context) (string, error) { return "", fmt.Errorf("connection refused") },
		"up":      func(context.Context) (string, error) { return "42", nil },
	}
	g := fanout.Start[string, string](context.Background(), fanout.Config{Timeout: 50 * time.Millisecond})
	defer g.Stop()
	for name, ask := range mirrors {
		g.Go(name, ask)
	}
	for range mirrors {
		r := <-g.Results()
		if r.Err != nil {
			continue // another mirror may have it
		}
		fmt.Println(r.Key, "answered", r.Value)
		return
	}
	// Output: up answered 42
}
