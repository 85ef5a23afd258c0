"""Chases (procedure 3.2.3, 4.2): phone replies, callbacks and their rework, work orders past their time."""
