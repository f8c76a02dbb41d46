package cli

// StartDaemon is startDaemon, for the tests of package cli_test.
var StartDaemon = startDaemon
