package main

import (
	"io"
	"testing"
	"time"

	"github.com/codename-gateway/codename-gateway/server"
)

func TestParseFlags(t *testing.T) {
	defaults := options{
		addr: "127.0.0.1:9090",
		cfg: server.Config{
			StreamInterval:        time.Second,
			DrainDelay:            2 * time.Second,
			DrainTimeout:          10 * time.Second,
			MaxRecvMsgSize:        64 << 10,
			MaxConcurrentStreams:  1000,
			MaxConnectionIdle:     5 * time.Minute,
			MaxConnectionAge:      30 * time.Minute,
			MaxConnectionAgeGrace: 5 * time.Minute,
		},
	}
	with := func(change func(*options)) options {
		o := defaults
		change(&o)
		return o
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    options
		wantErr bool
	}{
		{name: "defaults", want: defaults},
		{name: "limits from the environment",
			env: map[string]string{
				"CODENAME_MAX_STREAMS_PER_CONN": "100",
				"CODENAME_MAX_CONN_IDLE":        "1m",
				"CODENAME_MAX_CONN_AGE":         "10m",
				"CODENAME_MAX_CONN_AGE_GRACE":   "30s",
			},
			want: with(func(o *options) {
				o.cfg.MaxConcurrentStreams = 100
				o.cfg.MaxConnectionIdle = time.Minute
				o.cfg.MaxConnectionAge = 10 * time.Minute
				o.cfg.MaxConnectionAgeGrace = 30 * time.Second
			})},
		{name: "limits from flags, which win",
			args: []string{"-max-streams-per-conn=10", "-max-conn-idle=2m", "-max-conn-age=-1s", "-max-conn-age-grace=1s"},
			env:  map[string]string{"CODENAME_MAX_STREAMS_PER_CONN": "100", "CODENAME_MAX_CONN_AGE": "10m"},
			want: with(func(o *options) {
				o.cfg.MaxConcurrentStreams = 10
				o.cfg.MaxConnectionIdle = 2 * time.Minute
				o.cfg.MaxConnectionAge = -time.Second
				o.cfg.MaxConnectionAgeGrace = time.Second
			})},
		{name: "no streams per connection", args: []string{"-max-streams-per-conn=0"}, wantErr: true},
		{name: "negative streams per connection", args: []string{"-max-streams-per-conn=-1"}, wantErr: true},
		{name: "streams per connection past uint32", args: []string{"-max-streams-per-conn=4294967296"}, wantErr: true},
		{name: "malformed duration in the environment", env: map[string]string{"CODENAME_MAX_CONN_AGE": "forever"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			got, err := parseFlags(append([]string{"codename-server"}, tt.args...), getenv, io.Discard)
			if tt.wantErr {
				if err == nil {
					t.Errorf("parseFlags = %+v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseFlags: %v", err)
			}
			if got != tt.want {
				t.Errorf("parseFlags =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}
