package tlsreload

import "time"

// SetCheckEvery lets the tests, which live outside the package so that
// they can use tlstest, choose how often s looks at its files.
func (s *Source) SetCheckEvery(d time.Duration) { s.checkEvery = d }
