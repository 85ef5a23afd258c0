"""User-facing text of the domain layer, in zh_CN and en. Add a code here for every DomainError."""
from __future__ import annotations

MESSAGES: dict[str, tuple[str, str]] = {
    # code: (zh_CN, en)
    "not_found": ("找不到{what}:{ref}", "No {what_en} {ref}"),
    "bad_time": ("时间格式不对:{value}(应为 ISO 格式,如 2026-10-03T14:05)",
                 "Malformed time {value!r}: use ISO format, e.g. 2026-10-03T14:05"),
    "bad_amount": ("金额格式不对:{value}", "Malformed amount {value!r}"),
    # desk operations (models/desk.py)
    "exists": ("{what}已存在:{ref}", "The {what_en} {ref} already exists"),
    "bad_office_code": ("服务处代码不合格:{value!r}(只能用字母、数字、_ 和 -,以字母或数字开头,最多 16 个字符:{pattern};"
                        "不能是 group、CON、NUL 等保留名)",
                        "Malformed office code {value!r}: letters, digits, _ and - only, starting with a letter or "
                        "digit, at most 16 characters ({pattern}), and not a reserved name such as group, CON or NUL"),
    "staff_inactive": ("员工 {staff} 已停用", "Staff member {staff} is no longer active"),
    "cs_only": ("只有客服部可以办理{action_zh}:{staff} 属于{department_zh}(办法第二条、第四条第4款)",
                "Only customer service may {action}: {staff} belongs to {department} (procedure 2 and 4.4)"),
    "wrong_office": ("员工 {staff} 不属于服务处 {office}", "Staff member {staff} does not work at office {office}"),
    "before_event": ("时间 {at} 早于它所依据的{event}({event_at}),不能倒记",
                     "{at} is before the {event} it depends on ({event_at}): refused"),
    "negative_amount": ("金额不能为负或无效:{field}={value}", "{field} must be a non-negative amount, not {value}"),
    # values at every door (models/ledger/values.py)
    "money_malformed": ("金额格式不对:{field}={value}(应为数字,最多两位小数,如 80 或 80.50;不能用科学计数法)",
                        "Malformed amount {value!r} for {field}: write digits with at most 2 decimal places, "
                        "e.g. 80 or 80.50 (no exponent)"),
    "money_places": ("金额最多两位小数(到分):{field}={value}",
                     "{field} {value!r} has more than {places} decimal places: amounts are to the cent"),
    "money_too_large": ("金额太大:{field}={value}(应小于 {limit})",
                        "{field} {value!r} is too large: an amount is below {limit}"),
    "text_control": ("{field} 含有控制字符 {char}(第 {position} 个字符),不予受理",
                     "{field} holds a control character {char} (character {position}): refused"),
    "text_too_long": ("{field} 太长:{length} 个字符,最多 {limit} 个", "{field} is too long: {length} characters, "
                      "at most {limit}"),
    "time_out_of_range": ("{field} 的时间 {value} 超出范围({earliest}–{latest} 年)",
                          "{field} {value} is outside the years {earliest}-{latest}"),
    "time_too_far": ("{field} 的时间 {value} 太远:最多只能比现在晚 {days} 天",
                     "{field} {value} is too far ahead: at most {days} days from now"),
    "out_of_scope": ("不受理:{category_zh}({category})。家电维修和房屋修缮暂不列入有偿服务范围(《便民有偿服务管理办法》第二条)",
                     "Refused: {category}. Household-appliance repair and house renovation are not offered as "
                     "paid services (procedure, section 2)"),
    "unknown_category": ("未知的服务类别:{category}(可选 plumbing、electrical、cleaning、greening)",
                         "Unknown category {category} (plumbing, electrical, cleaning or greening)"),
    "unknown_department": ("未知的部门:{department}", "Unknown department {department}"),
    "unknown_role": ("未知的岗位:{role}", "Unknown role {role}"),
    "unknown_channel": ("未知的接待方式:{channel}(walk_in 或 phone)", "Unknown channel {channel} (walk_in or phone)"),
    "unknown_method": ("未知的收款方式:{method}", "Unknown payment method {method}"),
    "unknown_outcome": ("未知的回访结果:{outcome}", "Unknown callback outcome {outcome}"),
    "missing": ("缺少{field}", "{field} is required"),
    "price_category": ("价目 {price} 属于 {price_category},与类别 {category} 不符",
                       "Price item {price} is for {price_category}, not {category}"),
    "fee_needed": ("请给出价目(--price)或约定费用(--fee)", "Give a price item (--price) or the agreed fee (--fee)"),
    "community_office": ("小区 {community} 不归服务处 {office} 管理", "Community {community} is not managed by office {office}"),
    "reply_walk_in": ("{request} 是来访登记,无需电话回复", "{request} was a walk-in: there is no phone reply to give"),
    "already_replied": ("{request} 已于 {replied_at} 回复", "{request} was already replied to at {replied_at}"),
    "worker_department": ("{worker} 属于{worker_department_zh},{category_zh}工作由{department_zh}承担",
                          "{worker} belongs to {worker_department}; {category} work is done by {department}"),
    "already_issued": ("{request} 已开通知单 {order}", "{request} already has work order {order}"),
    "already_completed": ("{order} 已于 {completed_at} 完工", "{order} was already completed at {completed_at}"),
    "accept_before_completion": ("{order} 尚未完工,不能验收", "{order} is not completed yet: it cannot be accepted"),
    "already_accepted": ("{order} 已于 {accepted_at} 验收", "{order} was already accepted at {accepted_at}"),
    "receipts_issuer": ("票据只能由客服部或财务部发放:{staff} 属于{department_zh}",
                        "Receipts are issued by customer service or finance: {staff} belongs to {department}"),
    "receipt_number": ("票据号只能是数字:{number}", "A receipt number is digits only, not {number}"),
    "receipt_too_large": ("票据号太大:{number}(最大 {limit})", "Receipt number {number} is too large (at most {limit})"),
    "receipt_count": ("票据张数不对:{count}", "Receipt count must be 1..10000, not {count}"),
    "receipt_exists": ("票据号 {number} 已发放过", "Receipt {number} has already been issued"),
    "receipt_not_unused": ("票据 {number} 不可用(状态:{state})", "Receipt {number} cannot be used: it is {state}"),
    "receipt_not_retirable": ("票据 {number} 状态为 {state},只有未用的票据可以作废或交回",
                              "Receipt {number} is {state}: only an unused receipt can be voided or returned"),
    "collect_before_acceptance": ("{order} 尚未经业主验收签字,不能收费(办法三(二)2)",
                                  "{order} has not been accepted by the resident: no fee before acceptance (procedure 3.2.2)"),
    "receipt_holder": ("票据 {number} 发给了 {holder},不是 {staff},也不在客服部",
                       "Receipt {number} was issued to {holder}, not to {staff} or customer service"),
    "rework_free": ("{order} 是返修单,无偿返修,不能收费 {amount}(办法三(二)3)",
                    "{order} is a rework order: rework is free, {amount} cannot be collected (procedure 3.2.3)"),
    "amount_differs": ("{order} 约定费用 {fee},实收 {amount} 不同,请用 --reason 说明",
                       "{order}: {amount} differs from the agreed fee {fee}; give --reason"),
    "already_collected": ("{order} 已用票据 {receipt} 收费", "{order} was already collected on receipt {receipt}"),
    "not_cashier": ("{staff} 不是财务部出纳,不能接收现金", "{staff} is not a finance cashier: cash goes to finance"),
    "handover_empty": ("交款必须列出票据号", "A handover lists the receipts it covers"),
    "handover_duplicate": ("票据号重复:{numbers}", "Receipts listed twice: {numbers}"),
    "handover_not_cash": ("票据 {number} 不是已收现金的票据", "Receipt {number} is not a cash collection"),
    "handover_not_collector": ("票据 {number} 不是 {staff} 收的款", "Receipt {number} was not collected by {staff}"),
    "handover_already": ("票据 {number} 的现金已上交", "The cash of receipt {number} has already been handed over"),
    "callback_before_acceptance": ("{order} 尚未验收,不能回访", "{order} has not been accepted yet: no callback before acceptance"),
    "no_callback_owed": ("{order} 没有待办的回访", "{order} has no callback owed"),
    "report_department": ("部门记录只属于工程部或保洁部,不是 {department}",
                          "A department report belongs to engineering or cleaning, not {department}"),
    "report_by": ("{staff} 不属于{department_zh},不能记录该部门的工作",
                  "{staff} is not in {department}: cannot record that department's work"),
    # monthly tally
    "tally_bad_month": ("月份格式不对:{value}(应为 YYYY-MM,如 2026-10)", "Malformed month {value!r}: use YYYY-MM, e.g. 2026-10"),
    "tally_month_not_over": ("{month} 还没有结束,月度汇总只能在月末之后生成",
                             "{month} is not over yet: a month is tallied only after its last day"),
    # ledger import (models/ledger_import.py)
    "import_missing_columns": ("工作表 {sheet} 缺少必填列:{columns}。整个文件未导入(0 行),请补上这些列后重新导入。",
                               "Sheet {sheet} lacks the required column(s) {columns_en}: nothing was imported "
                               "(0 rows); add them and import again."),
    "import_unknown_kind": ("看不出 {file} 是哪一类台账,请用 --kind 指定({kinds})",
                            "Cannot tell which kind of ledger {file} is: give --kind ({kinds})"),
    "import_no_sheets": ("{file} 里没有可导入的工作表(工作表名应为:{kinds})",
                         "{file} has no sheet to import (sheet names: {kinds})"),
    "import_unsupported": ("不支持的文件类型:{file}(只支持 .xlsx 和 .csv)",
                           "Unsupported file {file}: .xlsx or .csv only"),
    "import_unreadable": ("无法读取 {file}({error})", "Cannot read {file} ({error})"),
    "import_encoding": ("{file} 的编码既不是 UTF-8 也不是 GBK,请另存为 UTF-8 CSV",
                        "{file} is neither UTF-8 nor GBK: save it as UTF-8 CSV"),
    "import_required": ("{column}不能为空", "{column_en} is empty"),
    "import_bad_time": ("时间看不懂:{value}(应写成 2026-10-03 14:05 或 2026/10/3 14:05)",
                        "Cannot read the time {value!r}: write 2026-10-03 14:05 or 2026/10/3 14:05"),
    "import_bad_amount": ("金额看不懂:{value}(应为数字,如 80、80.00、¥80)",
                          "Cannot read the amount {value!r}: write a number such as 80, 80.00 or ¥80"),
    "import_date_only": ("只有日期没有时间:{value}(请写到几点几分,如 2026-10-03 14:05)",
                         "{value!r} is a date without a time: write e.g. 2026-10-03 14:05"),
    "import_negative": ("金额不能为负数:{value}", "An amount cannot be negative: {value}"),
    "import_bad_choice": ("{column}填的是 {value},看不懂(可填:{choices})",
                          "{column_en} {value!r} is not one of: {choices}"),
    "import_unknown_staff": ("员工名单里没有 {value}(请填工号或姓名,或先导入员工表)",
                             "No staff member {value} (give a staff code or name, or import the staff sheet first)"),
    "import_ambiguous_staff": ("姓名 {value} 对应多名员工({codes}),请改填工号",
                               "{value} is the name of several staff members ({codes}): give the staff code"),
    "import_unknown_office": ("找不到服务处 {value}", "No office {value}"),
    "import_bad_office": ("找不到服务处 {value!r},它也不是合格的服务处代码({pattern})",
                          "No office {value!r}, and it is not a well-formed office code ({pattern})"),
    "import_office_needed": ("请填写服务处,或导入时用 --office 指定", "Give the office column, or --office"),
    "import_unknown_ref": ("找不到{what} {ref}(文件里和系统中都没有)",
                           "No {what_en} {ref} in the file or in the ledger"),
    "import_receipt_used": ("收据号 {number} 已用于通知单 {order},同一张收据不能用两次",
                            "Receipt {number} was already used for work order {order}: a receipt is used once"),
    "import_database_refused": ("数据库拒收这一行({error}):请检查各列的长度和内容",
                                "The database refused this row ({error}): check its values' length and content"),
    # the import's limits (models/ledger_import.py MAX_*; docs/import.md "Limits")
    "import_too_big": ("{file} 有 {size},超过导入上限 {limit}。整个文件未导入(0 行),请拆成几个文件后分别导入",
                       "{file} is {size}, over the import limit of {limit}: nothing was imported (0 rows); split "
                       "it into several files"),
    "import_too_big_unzipped": ("{file} 解压后有 {size},超过上限 {limit}(不像正常的工作簿)。整个文件未导入(0 行)",
                                "{file} unzips to {size}, over the limit of {limit} (not an ordinary workbook): "
                                "nothing was imported (0 rows)"),
    "import_too_many_rows": ("{sheet} 有 {rows} 行,超过上限 {limit} 行。整个文件未导入(0 行),请拆成几个文件后分别导入",
                             "{sheet} has {rows} rows, over the limit of {limit}: nothing was imported (0 rows); "
                             "split it into several files"),
    "import_sheet_too_big": ("工作表 {sheet} 用到了单元格 {last},超过上限(最多 {rows} 行、{columns} 列即到 {last_column} 列)。"
                             "整个文件未导入(0 行),请删掉数据以外的单元格(Ctrl+End 可找到最后一个单元格)后重新导入",
                             "Sheet {sheet} uses cell {last}, beyond the limit of {rows} rows and {columns} columns "
                             "(up to column {last_column}): nothing was imported (0 rows); delete the cells beyond "
                             "your data (Ctrl+End finds the last one) and import again"),
    "import_sheet_sparse": ("工作表 {sheet} 的单元格铺到 {last}({grid} 格),实际只有 {cells} 格有内容。整个文件未导入(0 行),"
                            "请删掉数据以外的单元格(Ctrl+End 可找到最后一个单元格)后重新导入",
                            "Sheet {sheet} spreads to {last} ({grid} cells) but holds only {cells}: nothing was "
                            "imported (0 rows); delete the cells beyond your data (Ctrl+End finds the last one) "
                            "and import again"),
    "import_cell_too_long": ("{sheet} 第 {line} 行 {column} 列的单元格有 {length} 个字符,超过上限 {limit}。"
                             "整个文件未导入(0 行)",
                             "{sheet} line {line} column {column}: the cell holds {length} characters, over the "
                             "limit of {limit}: nothing was imported (0 rows)"),
    "import_cell_too_long_csv": ("{sheet} 第 {line} 行有一个单元格超过 {limit} 个字符的上限。整个文件未导入(0 行)",
                                 "{sheet} line {line}: a cell is longer than the limit of {limit} characters: "
                                 "nothing was imported (0 rows)"),
    "import_bad_csv": ("{file} 第 {line} 行无法读取({error})。整个文件未导入(0 行)",
                       "Cannot read {file} at line {line} ({error}): nothing was imported (0 rows)"),
    # the demo (commands/demo.py)
    "demo_exists": ("数据库 {database} 里已经有台账(也许是上次的演示):演示只在空数据库里生成。"
                    "删除数据目录(默认 ./var)或设置 BIANMIN_DATA_DIR 换一个目录后重试",
                    "The database {database} already holds a ledger (perhaps an earlier demo): the demo builds "
                    "into an empty database only. Remove the data folder (./var by default) or set "
                    "BIANMIN_DATA_DIR to another folder, and run it again"),
    # opening the ledger database (models/ledger/db.py open_ledger)
    "ledger_not_migrated": ("账本数据库 {url} 不存在或尚未建表:请先运行 bianmin db upgrade",
                            "The ledger database {url} is missing or has no tables yet: run `bianmin db upgrade` "
                            "first"),
    "ledger_old_schema": ("账本数据库 {url} 的结构版本是 {revision},本程序需要 {head}:请运行 bianmin db upgrade",
                          "The ledger database {url} is at schema revision {revision}, this bianmin needs {head}: "
                          "run `bianmin db upgrade`"),
    "ledger_no_database": ("数据库 {url} 不存在:请先创建(createdb),再运行 bianmin db upgrade",
                           "The database {url} does not exist: create it (createdb), then run `bianmin db upgrade`"),
    "ledger_unreachable": ("无法使用账本数据库 {url}:{reason}", "Cannot use the ledger database {url}: {reason}"),
    "ledger_bad_url": ("数据库地址无法使用(BIANMIN_DATABASE_URL):{url}:{reason}",
                       "Unusable database URL (BIANMIN_DATABASE_URL) {url}: {reason}"),
}


class _Shown(str):
    """A value already escaped for one line: `{value!r}` quotes it without escaping its backslashes again."""

    def __repr__(self) -> str:
        return f"'{self}'"


def render(code: str, locale: str, **params) -> str:
    """The message in `locale`, on one line: a value echoed back has its control characters escaped and is cut
    short (a clerk's typo may be 10,000 characters or carry an ANSI escape)."""
    zh, en = MESSAGES.get(code, (code, code))
    template = en if locale == "en" else zh
    from models.ledger.values import shown

    params = {k: _Shown(shown(v, 200)) if isinstance(v, str) else v for k, v in params.items()}
    try:
        return template.format(**params)
    except (KeyError, IndexError):
        return f"{template} {params}"

