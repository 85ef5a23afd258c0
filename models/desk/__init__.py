"""Desk operations: the procedure's workflow, one operation per step, each refusing what the procedure forbids.

Each operation is a pure decision (`rules`: plain values and the current state in, a decision or a refusal out)
between the lookups it needs (`queries`) and one apply (`apply`: its rows and its audit event). The CLI and the
ledger import go through these same operations; an importer passes its `Batch` for what the operations of one
transaction share. `story`: an order's whole story for `orders show`.
"""
from models.desk.apply import (
    accept,
    add_community,
    add_office,
    add_staff,
    callback,
    collect,
    complete,
    decide_register,
    department_report,
    handover,
    issue_order,
    issue_receipts,
    register,
    reply,
    return_receipt,
    set_price,
    void_receipt,
)
from models.desk.batch import Batch
from models.desk.facts import (
    DEFAULT_REWORK_WITHIN,
    ORDER_OF_REQUEST,
    RECEIPT_OF_ORDER,
    ZERO,
    CallbackOutcome,
    Decision,
    OfficeFacts,
    StaffFacts,
)
from models.desk.rules import reply as decide_reply

__all__ = [
    "DEFAULT_REWORK_WITHIN", "ORDER_OF_REQUEST", "RECEIPT_OF_ORDER", "ZERO", "Batch", "CallbackOutcome", "Decision",
    "OfficeFacts", "StaffFacts", "accept", "add_community", "add_office", "add_staff", "callback", "collect",
    "complete", "decide_register", "decide_reply", "department_report", "handover", "issue_order", "issue_receipts",
    "register", "reply", "return_receipt", "set_price", "void_receipt",
]
