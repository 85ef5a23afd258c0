"""The monthly tally (procedure 3.2.4): a month reconciled across CS, finance, engineering and cleaning."""
