"""The departments' sign-off of the monthly report (procedure 4.3): drafts, answers, versions, the deadline."""
