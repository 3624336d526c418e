package logs

import (
	"sort"
	"sync"
)

// stats counts, per input, the records stored and the bad input refused,
// by reason (invalid_msgpack, not_a_map, frame_too_large, …): `logs
// stats` shows them.
type stats struct {
	mu sync.Mutex
	m  map[string]map[string]int64
}

func newStats() *stats { return &stats{m: map[string]map[string]int64{}} }

func (s *stats) add(input, counter string, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.m[input]
	if c == nil {
		c = map[string]int64{}
		s.m[input] = c
	}
	c[counter] += n
}

// statRow is one row of `logs stats`.
type statRow struct {
	Input   string `json:"input"`
	Counter string `json:"counter"`
	Value   int64  `json:"value"`
}

func (s *stats) rows() []statRow {
	s.mu.Lock()
	defer s.mu.Unlock()
	var rows []statRow
	for in, c := range s.m {
		for k, v := range c {
			rows = append(rows, statRow{in, k, v})
		}
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Input != rows[j].Input {
			return rows[i].Input < rows[j].Input
		}
		return rows[i].Counter < rows[j].Counter
	})
	return rows
}
