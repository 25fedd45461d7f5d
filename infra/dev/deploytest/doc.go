// Package deploytest holds tests of the deployment artefacts against the
// code: that template.yaml, the Makefile and the sample events in events/
// agree with the handler's routes, and that the sample events run through
// the same Lambda JSON path the deployed function uses. It has no code of
// its own.
package deploytest
