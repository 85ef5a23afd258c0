"""Cash (procedure 3.2.2): cash to finance by the cut-off, handovers, receipt custody, fees collected."""
