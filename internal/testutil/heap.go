package testutil

import (
	"runtime"
	"sync"
	"time"
)

// PeakHeapGrowth runs f and returns how far the heap in use (garbage not yet
// collected included) rose above where it was after a GC before f, sampled
// every millisecond while f runs.
func PeakHeapGrowth(f func()) uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapInuse, ms.HeapInuse
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	f()
	close(done)
	wg.Wait()
	var end runtime.MemStats
	runtime.ReadMemStats(&end)
	peak = max(peak, end.HeapInuse)
	if peak < base {
		return 0
	}
	return peak - base
}
