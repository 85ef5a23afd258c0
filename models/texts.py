"""The translation catalogue: every user-facing text of bianmin, in zh_CN and en, under one code.

The CLI (`commands.common.t`), a DomainError's message (`models.errors`), the alert digests and the monthly
report (notifications/ and their templates) all take their words from here; a finding kind's labels are
declared with the kind (models/findings.py) but are `Text`s too. The digests' and flows', the report's and the
console's entries are kept in models/texts_notices.py, texts_report.py and texts_console.py and merged here.
A code's two texts take the same `{placeholders}` (tests/unit/test_texts.py). Callers pass codes and values, never words: `{what:thing}` shows
the words of "thing.<what>", and a `Text` value shows in the locale. Pure: no typer, jinja or database.
"""
from __future__ import annotations

import re
import string
from functools import lru_cache
from typing import Any, NamedTuple

from models.texts_console import CONSOLE_TEXTS
from models.texts_deploy import DEPLOY_TEXTS
from models.texts_notices import NOTICE_TEXTS
from models.texts_report import REPORT_TEXTS
from models.texts_watch import WATCH_TEXTS

LOCALES = ("zh_CN", "en")


class Text(NamedTuple):
    """One text in both languages; a tuple, so `zh, en = text` and comparisons with pairs keep working."""

    zh_CN: str
    en: str

    def __call__(self, locale: str) -> str:
        return self.en if locale == "en" else self.zh_CN


T = Text  # short, for the table below

TEXTS: dict[str, Text] = {
    # == refusals: DomainError codes (models/errors.py), raised across models/ =====================================
    "not_found": T("找不到{what:thing}:{ref}", "No {what:thing} {ref}"),
    "bad_time": T("时间格式不对:{value}(应为 ISO 格式,如 2026-10-03T14:05)",
                  "Malformed time {value!r}: use ISO format, e.g. 2026-10-03T14:05"),
    "bad_amount": T("金额格式不对:{value}", "Malformed amount {value!r}"),
    # desk operations (models/desk/)
    "exists": T("{what:thing}已存在:{ref}", "The {what:thing} {ref} already exists"),
    "bad_office_code": T("服务处代码不合格:{value!r}(只能用字母、数字、_ 和 -,以字母或数字开头,最多 16 个字符:{pattern};"
                         "不能是 group、CON、NUL 等保留名)",
                         "Malformed office code {value!r}: letters, digits, _ and - only, starting with a letter or "
                         "digit, at most 16 characters ({pattern}), and not a reserved name such as group, CON or NUL"),
    "staff_inactive": T("员工 {staff} 已停用", "Staff member {staff} is no longer active"),
    "cs_only": T("只有客服部可以办理{action:action}:{staff} 属于{department:department}(办法第二条、第四条第4款)",
                 "Only customer service may {action}: {staff} belongs to {department} (procedure 2 and 4.4)"),
    "wrong_office": T("员工 {staff} 不属于服务处 {office}", "Staff member {staff} does not work at office {office}"),
    "before_event": T("时间 {at} 早于它所依据的{event}({event_at}),不能倒记",
                      "{at} is before the {event} it depends on ({event_at}): refused"),
    "negative_amount": T("金额不能为负或无效:{field}={value}", "{field} must be a non-negative amount, not {value}"),
    # values at every door (models/ledger/values.py)
    "money_malformed": T("金额格式不对:{field}={value}(应为数字,最多两位小数,如 80 或 80.50;不能用科学计数法)",
                         "Malformed amount {value!r} for {field}: write digits with at most 2 decimal places, "
                         "e.g. 80 or 80.50 (no exponent)"),
    "money_places": T("金额最多两位小数(到分):{field}={value}",
                      "{field} {value!r} has more than {places} decimal places: amounts are to the cent"),
    "money_too_large": T("金额太大:{field}={value}(应小于 {limit})",
                         "{field} {value!r} is too large: an amount is below {limit}"),
    "text_control": T("{field} 含有控制字符 {char}(第 {position} 个字符),不予受理",
                      "{field} holds a control character {char} (character {position}): refused"),
    "text_too_long": T("{field} 太长:{length} 个字符,最多 {limit} 个", "{field} is too long: {length} characters, "
                       "at most {limit}"),
    "time_out_of_range": T("{field} 的时间 {value} 超出范围({earliest}–{latest} 年)",
                           "{field} {value} is outside the years {earliest}-{latest}"),
    "time_too_far": T("{field} 的时间 {value} 太远:最多只能比现在晚 {days} 天",
                      "{field} {value} is too far ahead: at most {days} days from now"),
    "out_of_scope": T("不受理:{category:category}({category})。家电维修和房屋修缮暂不列入有偿服务范围(《便民有偿服务管理办法》第二条)",
                      "Refused: {category}. Household-appliance repair and house renovation are not offered as "
                      "paid services (procedure, section 2)"),
    "unknown_category": T("未知的服务类别:{category}(可选 plumbing、electrical、cleaning、greening)",
                          "Unknown category {category} (plumbing, electrical, cleaning or greening)"),
    "unknown_department": T("未知的部门:{department}", "Unknown department {department}"),
    "unknown_role": T("未知的岗位:{role}", "Unknown role {role}"),
    "unknown_channel": T("未知的接待方式:{channel}(walk_in 或 phone)", "Unknown channel {channel} (walk_in or phone)"),
    "unknown_method": T("未知的收款方式:{method}", "Unknown payment method {method}"),
    "unknown_outcome": T("未知的回访结果:{outcome}", "Unknown callback outcome {outcome}"),
    "missing": T("缺少{field}", "{field} is required"),
    "price_category": T("价目 {price} 属于 {price_category},与类别 {category} 不符",
                        "Price item {price} is for {price_category}, not {category}"),
    "fee_needed": T("请给出价目(--price)或约定费用(--fee)", "Give a price item (--price) or the agreed fee (--fee)"),
    "community_office": T("小区 {community} 不归服务处 {office} 管理",
                          "Community {community} is not managed by office {office}"),
    "reply_walk_in": T("{request} 是来访登记,无需电话回复", "{request} was a walk-in: there is no phone reply to give"),
    "already_replied": T("{request} 已于 {replied_at} 回复", "{request} was already replied to at {replied_at}"),
    "worker_department": T("{worker} 属于{worker_department:department},{category:category}工作由{department:department}承担",
                           "{worker} belongs to {worker_department}; {category} work is done by {department}"),
    "report_worker_department": T("{worker} 属于{worker_department:department},{department:department}工作由"
                                  "{department:department}承担",
                                  "{worker} belongs to {worker_department}; {department} work is done by {department}"),
    "already_issued": T("{request} 已开通知单 {order}", "{request} already has work order {order}"),
    "already_completed": T("{order} 已于 {completed_at} 完工", "{order} was already completed at {completed_at}"),
    "accept_before_completion": T("{order} 尚未完工,不能验收", "{order} is not completed yet: it cannot be accepted"),
    "already_accepted": T("{order} 已于 {accepted_at} 验收", "{order} was already accepted at {accepted_at}"),
    "receipts_issuer": T("票据只能由客服部或财务部发放:{staff} 属于{department:department}",
                         "Receipts are issued by customer service or finance: {staff} belongs to {department}"),
    "receipt_number": T("票据号只能是数字:{number}", "A receipt number is digits only, not {number}"),
    "receipt_too_large": T("票据号太大:{number}(最大 {limit})", "Receipt number {number} is too large (at most {limit})"),
    "receipt_count": T("票据张数不对:{count}", "Receipt count must be 1..10000, not {count}"),
    "receipt_exists": T("票据号 {number} 已发放过", "Receipt {number} has already been issued"),
    "receipt_not_unused": T("票据 {number} 不可用(状态:{state})", "Receipt {number} cannot be used: it is {state}"),
    "receipt_not_retirable": T("票据 {number} 状态为 {state},只有未用的票据可以作废或交回",
                               "Receipt {number} is {state}: only an unused receipt can be voided or returned"),
    "collect_before_acceptance": T("{order} 尚未经业主验收签字,不能收费(办法三(二)2)",
                                   "{order} has not been accepted by the resident: no fee before acceptance ("
                                   "procedure 3.2.2)"),
    "receipt_holder": T("票据 {number} 发给了 {holder},不是 {staff},也不在客服部",
                        "Receipt {number} was issued to {holder}, not to {staff} or customer service"),
    "rework_free": T("{order} 是返修单,无偿返修,不能收费 {amount}(办法三(二)3)",
                     "{order} is a rework order: rework is free, {amount} cannot be collected (procedure 3.2.3)"),
    "amount_differs": T("{order} 约定费用 {fee},实收 {amount} 不同,请用 --reason 说明",
                        "{order}: {amount} differs from the agreed fee {fee}; give --reason"),
    "already_collected": T("{order} 已用票据 {receipt} 收费", "{order} was already collected on receipt {receipt}"),
    "not_cashier": T("{staff} 不是财务部出纳,不能接收现金", "{staff} is not a finance cashier: cash goes to finance"),
    "handover_empty": T("交款必须列出票据号", "A handover lists the receipts it covers"),
    "handover_duplicate": T("票据号重复:{numbers}", "Receipts listed twice: {numbers}"),
    "handover_not_cash": T("票据 {number} 不是已收现金的票据", "Receipt {number} is not a cash collection"),
    "handover_not_collector": T("票据 {number} 不是 {staff} 收的款", "Receipt {number} was not collected by {staff}"),
    "handover_already": T("票据 {number} 的现金已上交", "The cash of receipt {number} has already been handed over"),
    "callback_before_acceptance": T("{order} 尚未验收,不能回访",
                                    "{order} has not been accepted yet: no callback before acceptance"),
    "no_callback_owed": T("{order} 没有待办的回访", "{order} has no callback owed"),
    "report_department": T("部门记录只属于工程部或保洁部,不是 {department}",
                           "A department report belongs to engineering or cleaning, not {department}"),
    "report_by": T("{staff} 不属于{department:department},不能记录该部门的工作",
                   "{staff} is not in {department}: cannot record that department's work"),
    # monthly tally
    "tally_bad_month": T("月份格式不对:{value}(应为 YYYY-MM,如 2026-10)",
                         "Malformed month {value!r}: use YYYY-MM, e.g. 2026-10"),
    "tally_month_not_over": T("{month} 还没有结束,月度汇总只能在月末之后生成",
                              "{month} is not over yet: a month is tallied only after its last day"),
    # ledger import (models/imports/)
    "import_missing_columns": T("工作表 {sheet} 缺少必填列:{columns}。整个文件未导入(0 行),请补上这些列后重新导入。",
                                "Sheet {sheet} lacks the required column(s) {columns}: nothing was imported "
                                "(0 rows); add them and import again."),
    "import_unknown_kind": T("看不出 {file} 是哪一类台账,请用 --kind 指定({kinds})",
                             "Cannot tell which kind of ledger {file} is: give --kind ({kinds})"),
    "import_no_sheets": T("{file} 里没有可导入的工作表(工作表名应为:{kinds})",
                          "{file} has no sheet to import (sheet names: {kinds})"),
    "import_unsupported": T("不支持的文件类型:{file}(只支持 .xlsx 和 .csv)",
                            "Unsupported file {file}: .xlsx or .csv only"),
    "import_unreadable": T("无法读取 {file}({error})", "Cannot read {file} ({error})"),
    "import_encoding": T("{file} 的编码既不是 UTF-8 也不是 GBK,请另存为 UTF-8 CSV",
                         "{file} is neither UTF-8 nor GBK: save it as UTF-8 CSV"),
    "import_required": T("{column}不能为空", "{column} is empty"),
    "import_bad_time": T("时间看不懂:{value}(应写成 2026-10-03 14:05 或 2026/10/3 14:05)",
                         "Cannot read the time {value!r}: write 2026-10-03 14:05 or 2026/10/3 14:05"),
    "import_bad_amount": T("金额看不懂:{value}(应为数字,如 80、80.00、¥80)",
                           "Cannot read the amount {value!r}: write a number such as 80, 80.00 or ¥80"),
    "import_date_only": T("只有日期没有时间:{value}(请写到几点几分,如 2026-10-03 14:05)",
                          "{value!r} is a date without a time: write e.g. 2026-10-03 14:05"),
    "import_negative": T("金额不能为负数:{value}", "An amount cannot be negative: {value}"),
    "import_bad_choice": T("{column}填的是 {value},看不懂(可填:{choices})",
                           "{column} {value!r} is not one of: {choices}"),
    "import_unknown_staff": T("员工名单里没有 {value}(请填工号或姓名,或先导入员工表)",
                              "No staff member {value} (give a staff code or name, or import the staff sheet first)"),
    "import_ambiguous_staff": T("姓名 {value} 对应多名员工({codes}),请改填工号",
                                "{value} is the name of several staff members ({codes}): give the staff code"),
    "import_unknown_office": T("找不到服务处 {value}", "No office {value}"),
    "import_bad_office": T("找不到服务处 {value!r},它也不是合格的服务处代码({pattern})",
                           "No office {value!r}, and it is not a well-formed office code ({pattern})"),
    "import_office_needed": T("请填写服务处,或导入时用 --office 指定", "Give the office column, or --office"),
    "import_unknown_ref": T("找不到{what:thing} {ref}(文件里和系统中都没有)",
                            "No {what:thing} {ref} in the file or in the ledger"),
    "import_receipt_used": T("收据号 {number} 已用于通知单 {order},同一张收据不能用两次",
                             "Receipt {number} was already used for work order {order}: a receipt is used once"),
    "import_where": T("{sheet} 第 {line} 行{column}", "{sheet} line {line}{column}"),
    "import_database_refused": T("数据库拒收这一行({error}):请检查各列的长度和内容",
                                 "The database refused this row ({error}): check its values' length and content"),
    # the import's limits (models/imports/limits.py MAX_*; docs/import.md "Limits")
    "import_too_big": T("{file} 有 {size},超过导入上限 {limit}。整个文件未导入(0 行),请拆成几个文件后分别导入",
                        "{file} is {size}, over the import limit of {limit}: nothing was imported (0 rows); split "
                        "it into several files"),
    "import_too_big_unzipped": T("{file} 解压后有 {size},超过上限 {limit}(不像正常的工作簿)。整个文件未导入(0 行)",
                                 "{file} unzips to {size}, over the limit of {limit} (not an ordinary workbook): "
                                 "nothing was imported (0 rows)"),
    "import_too_many_rows": T("{sheet} 有 {rows} 行,超过上限 {limit} 行。整个文件未导入(0 行),请拆成几个文件后分别导入",
                              "{sheet} has {rows} rows, over the limit of {limit}: nothing was imported (0 rows); "
                              "split it into several files"),
    "import_sheet_too_big": T("工作表 {sheet} 用到了单元格 {last},超过上限(最多 {rows} 行、{columns} 列即到 {last_column} 列)。"
                              "整个文件未导入(0 行),请删掉数据以外的单元格(Ctrl+End 可找到最后一个单元格)后重新导入",
                              "Sheet {sheet} uses cell {last}, beyond the limit of {rows} rows and {columns} columns "
                              "(up to column {last_column}): nothing was imported (0 rows); delete the cells beyond "
                              "your data (Ctrl+End finds the last one) and import again"),
    "import_sheet_sparse": T("工作表 {sheet} 的单元格铺到 {last}({grid} 格),实际只有 {cells} 格有内容。整个文件未导入(0 行),"
                             "请删掉数据以外的单元格(Ctrl+End 可找到最后一个单元格)后重新导入",
                             "Sheet {sheet} spreads to {last} ({grid} cells) but holds only {cells}: nothing was "
                             "imported (0 rows); delete the cells beyond your data (Ctrl+End finds the last one) "
                             "and import again"),
    "import_cell_too_long": T("{sheet} 第 {line} 行 {column} 列的单元格有 {length} 个字符,超过上限 {limit}。"
                              "整个文件未导入(0 行)",
                              "{sheet} line {line} column {column}: the cell holds {length} characters, over the "
                              "limit of {limit}: nothing was imported (0 rows)"),
    "import_cell_too_long_csv": T("{sheet} 第 {line} 行有一个单元格超过 {limit} 个字符的上限。整个文件未导入(0 行)",
                                  "{sheet} line {line}: a cell is longer than the limit of {limit} characters: "
                                  "nothing was imported (0 rows)"),
    "import_bad_csv": T("{file} 第 {line} 行无法读取({error})。整个文件未导入(0 行)",
                        "Cannot read {file} at line {line} ({error}): nothing was imported (0 rows)"),
    # the demo (commands/demo.py)
    "demo_exists": T("数据库 {database} 里已经有台账(也许是上次的演示):演示只在空数据库里生成。"
                     "删除数据目录(默认 ./var)或设置 BIANMIN_DATA_DIR 换一个目录后重试",
                     "The database {database} already holds a ledger (perhaps an earlier demo): the demo builds "
                     "into an empty database only. Remove the data folder (./var by default) or set "
                     "BIANMIN_DATA_DIR to another folder, and run it again"),
    # opening the ledger database (models/ledger/db.py open_ledger)
    "ledger_not_migrated": T("账本数据库 {url} 不存在或尚未建表:请先运行 bianmin db upgrade",
                             "The ledger database {url} is missing or has no tables yet: run `bianmin db upgrade` "
                             "first"),
    "ledger_old_schema": T("账本数据库 {url} 的结构版本是 {revision},本程序需要 {head}:请运行 bianmin db upgrade",
                           "The ledger database {url} is at schema revision {revision}, this bianmin needs {head}: "
                           "run `bianmin db upgrade`"),
    "ledger_no_database": T("数据库 {url} 不存在:请先创建(createdb),再运行 bianmin db upgrade",
                            "The database {url} does not exist: create it (createdb), then run `bianmin db upgrade`"),
    "ledger_unreachable": T("无法使用账本数据库 {url}:{reason}", "Cannot use the ledger database {url}: {reason}"),
    "ledger_bad_url": T("数据库地址无法使用(BIANMIN_DATABASE_URL):{url}:{reason}",
                        "Unusable database URL (BIANMIN_DATABASE_URL) {url}: {reason}"),

    # == the command line (commands/): "cli.<command>.<what>" =====================================================
    # -- shared by several commands (commands/*.py)
    "cli.office": T("服务处", "Office"),
    "cli.status": T("状态", "Status"),
    "cli.kind": T("类别", "Kind"),
    "cli.due": T("到期", "Due"),
    "cli.overdue_min": T("逾期(分钟)", "Overdue (min)"),
    "cli.alerts_summary": T("新增提醒 {new} 条,仍未解决 {seen_again} 条,已解决 {resolved} 条",
                            "{new} new alert(s) queued, {seen_again} still open, {resolved} resolved"),
    "cli.prefect": T("Prefect:{where}", "Prefect: {where}"),
    "cli.run_failed": T("{name} 运行失败:{message}", "{name} failed: {message}"),
    "cli.bad_time": T("时间格式不对:{value!r}(应为 ISO 格式,如 2026-10-03T14:05)",
                      "Malformed time {value!r}: use ISO format, e.g. 2026-10-03T14:05"),
    "cli.bad_day": T("日期格式不对:{value!r}(应为 YYYY-MM-DD,如 2026-10-08)",
                     "Malformed day {value!r}: use YYYY-MM-DD, e.g. 2026-10-08"),
    "cli.could_not_run": T("{name} 无法运行:{error}", "{name} could not run: {error}"),
    "cli.yes": T("是", "yes"),
    "cli.no": T("否", "no"),
    # -- usage errors (commands/cli.py)
    "cli.usage.aborted": T("已取消", "Aborted"),
    "cli.usage.argument": T("第 {number} 个参数", "argument {number}"),
    "cli.usage.too_long": T("{name} 太长:{length} 个字符,最多 {limit} 个",
                            "{name} is too long: {length} characters, at most {limit}"),
    "cli.usage.control_character": T("{name} 含有控制字符 {char},不予受理", "{name} holds a control character {char}: refused"),
    "cli.usage.bad_argument": T("{where}:参数错误:{problem}(--help 查看用法)", "{where}: {problem} (see --help)"),
    # -- bianmin alerts (commands/alerts.py)
    "cli.alerts.all_offices": T("全部服务处", "all offices"),
    "cli.alerts.key": T("编号", "Key"),
    "cli.alerts.lv": T("级", "Lv"),
    "cli.alerts.tag": T("通知", "Tag"),
    "cli.alerts.tries": T("尝试", "Tries"),
    "cli.alerts.last_seen": T("最近发现", "Last seen"),
    "cli.alerts.no_open_alert": T("没有未解除的提醒:{key}", "No open alert with key {key}"),
    "cli.alerts.silence_ends_first": T("静默结束时间必须晚于开始时间", "The silence must end after it starts"),
    "cli.alerts.silence_reason_needed": T("请说明静默原因", "Give a reason for the silence"),
    "cli.alerts.until": T("至", "Until"),
    "cli.alerts.by": T("设置人", "By"),
    "cli.alerts.reason": T("原因", "Reason"),
    "cli.alerts.alerts": T("提醒({count} 条)", "Alerts ({count})"),
    "cli.alerts.acknowledged": T("已确认 {key}({count} 条通知),{by}", "Acknowledged {key} ({count} row(s)) by {by}"),
    "cli.alerts.silenced": T("已静默 {kind}({where})至 {ends},{by}:{reason}",
                             "Silenced {kind} ({where}) until {ends} by {by}: {reason}"),
    "cli.alerts.active_silences": T("生效中的静默", "Active silences"),
    # an alert's status (the outbox's states)
    "cli.alerts.status.pending": T("待发送", "pending"),
    "cli.alerts.status.sent": T("已发送", "sent"),
    "cli.alerts.status.resolved": T("已解除", "resolved"),
    "cli.alerts.status.acked": T("已确认", "acked"),
    "cli.alerts.status.silenced": T("已静默", "silenced"),
    # -- bianmin run cash (commands/cash.py)
    "cli.cash.handover": T("交款 {handover}:应交 {covered},实点 {counted}",
                           "handover {handover}: receipts {covered}, counted {counted}"),
    "cli.cash.finding": T("类别", "Finding"),
    "cli.cash.holder": T("经手人", "Holder"),
    "cli.cash.receipts_orders": T("票据 / 单号", "Receipts / orders"),
    "cli.cash.amount": T("金额", "Amount"),
    "cli.cash.collector": T("经手人", "Collector"),
    "cli.cash.department": T("部门", "Department"),
    "cli.cash.cash": T("现金", "Cash"),
    "cli.cash.electronic": T("电子支付", "Electronic"),
    "cli.cash.handed_over": T("已交财务", "Handed over"),
    "cli.cash.outstanding": T("未交现金", "Outstanding"),
    "cli.cash.day_off": T("现金检查 {day}:休息日,不做检查;未解决的提醒保持不变。",
                          "Cash check {day}: a day off, nothing evaluated; open findings stay open."),
    "cli.cash.title": T("现金检查 {day}(截至 {when})", "Cash check {day} (as of {when})"),
    "cli.cash.nothing_found": T("现金检查 {day}(截至 {when}):没有发现问题。", "Cash check {day} (as of {when}): nothing found."),
    "cli.cash.money_by_collector": T("{day} 收款与交款(按经手人)", "{day} money by collector"),
    "cli.cash.total": T("合计({collectors} 人)", "total ({collectors})"),
    "cli.cash.replay": T("回放:提醒表已有更晚的现金检查结果,本次只显示、不写入提醒。",
                         "Replay: the outbox already holds a later cash check; shown only, no alerts recorded."),
    # -- bianmin config (commands/config.py)
    "cli.config.no_apprise": T("未设置 apprise 配置:提醒写入 {folder}/*.txt",
                               "No apprise config: alerts are written to {folder}/*.txt"),
    "cli.config.test_title": T("【便民】测试消息", "[bianmin] test message"),
    "cli.config.test_body": T("这是发往 {tag} 的测试消息,收到即说明通知渠道配置正确。",
                              "A test message for {tag}: if you read this, the channel works."),
    "cli.config.tag_without_url": T("配置错误:路由用到的标签 {tag} 在 apprise 配置中没有地址",
                                    "Configuration error: routed tag {tag} has no URL in the apprise config"),
    "cli.config.open_permissions": T("警告:apprise 配置 {path} 的权限是 {mode},同组或其他用户可以读取其中的密码和令牌;请运行 chmod 600 {path}",
                                     "Warning: the apprise config {path} is {mode}, open to group or others, and it "
                                     "holds passwords and tokens: run chmod 600 {path}"),
    "cli.config.effective_settings": T("生效配置", "Effective settings"),
    "cli.config.value": T("值", "value"),
    "cli.config.test_not_delivered": T("测试消息未送达", "The test message was not delivered"),
    "cli.config.tag": T("标签", "Tag"),
    "cli.config.urls": T("地址(已隐藏密钥)", "URLs (secrets hidden)"),
    "cli.config.routed": T("路由使用", "Routed"),
    "cli.config.skipped_entry": T("apprise 配置有无法加载的条目:{line}", "apprise skipped an entry: {line}"),
    "cli.config.apprise_config": T("apprise 配置 {path}", "apprise config {path}"),
    "cli.config.test_failed": T("测试消息发送失败({tag}):{error}", "Test message to {tag} failed: {error}"),
    "cli.config.test_sent": T("测试消息已发送到 {tag}", "Test message sent to {tag}"),
    # -- bianmin desk (commands/desk.py)
    "cli.desk.issued": T("已开通知单 {order}({department},{worker},{sched})",
                         "Work order {order} issued ({department}, {worker}, {sched})"),
    "cli.desk.completed": T("{order} 已完工", "{order} completed"),
    "cli.desk.accepted": T("{order} 已验收({signed_by} 签字),{callback_due} 前回访",
                           "{order} accepted (signed {signed_by}); callback due {callback_due}"),
    "cli.desk.receipts_issued": T("票据 {first}–{last}({count} 张)已发给 {to}",
                                  "Receipts {first}–{last} ({count}) issued to {to}"),
    "cli.desk.report_recorded": T("已记录部门工作 {report}", "Department report {report} recorded"),
    "cli.desk.callback_rework": T("{order} 回访:不满意;已开无偿返修单 {rework_order}",
                                  "{order} callback: unsatisfied; free rework order {rework_order}"),
    "cli.desk.callback": T("{order} 回访:{outcome}", "{order} callback: {outcome}"),
    "cli.desk.conflict": T("与已有记录冲突,请重试:{name}", "Conflicts with an existing record, please retry: {name}"),
    "cli.desk.registered": T("已登记 {request},约定费用 {agreed_fee} 元{due}",
                             "Registered {request}, agreed fee {agreed_fee}{due}"),
    "cli.desk.reply_due": T(";{due} 前回复", "; reply due {due}"),
    "cli.desk.replied": T("{request} 已回复", "{request} replied"),
    "cli.desk.replied_late": T("{request} 已回复,已超时", "{request} replied (late)"),
    "cli.desk.receipt_voided": T("票据 {number} 已作废", "Receipt {number} voided"),
    "cli.desk.receipt_returned": T("票据 {number} 已交回", "Receipt {number} returned"),
    "cli.desk.collected": T("{order} 收费 {amount} 元({method}),票据 {receipt}{due}",
                            "{order}: {amount} collected ({method}) on receipt {receipt}{due}"),
    "cli.desk.cash_due": T(";现金须于 {due} 前交财务", "; cash due at finance by {due}"),
    "cli.desk.handover": T("交款 {handover}:应交 {declared} 元,实点 {counted} 元{short}",
                           "Handover {handover}: declared {declared}, counted {counted}{short}"),
    "cli.desk.short_by": T(",短款 {shortfall} 元", ", short by {shortfall}"),
    # -- bianmin orders show (commands/desk.py)
    "cli.story.registered": T("  {received_at} {received_by} 登记:{resident},{address},{phone};{category}:"
                              "{description};约定 {agreed_fee} 元",
                              "  {received_at} registered by {received_by}: {resident}, {address}, {phone}; "
                              "{category}: {description}; agreed fee {agreed_fee}"),
    "cli.story.at": T("时间", "at"),
    "cli.story.actor": T("操作人", "actor"),
    "cli.story.action": T("操作", "action"),
    "cli.story.entity": T("对象", "entity"),
    "cli.story.rework_order": T("返修单(返修自 {rework_of})", "rework order (of {rework_of})"),
    "cli.story.work_order": T("通知单", "work order"),
    "cli.story.rework": T(",返修单 {rework_order}", ", rework {rework_order}"),
    "cli.story.audit_trail": T("操作记录", "Audit trail"),
    "cli.story.callback_done": T("回访 {order}:{done_at} {done_by} {outcome}{note}{after}(应于 {due_at} 前)",
                                 "Callback {order}: {done_at} {done_by} {outcome}{note}{after} (due {due_at})"),
    "cli.story.callback_owed": T("回访 {order}:待办,应于 {due_at} 前", "Callback {order}: owed by {due_at}"),
    "cli.story.request_phone": T("登记 {number}({office},来电)", "Request {number} ({office}, phone)"),
    "cli.story.request_walk_in": T("登记 {number}({office},来访)", "Request {number} ({office}, walk_in)"),
    "cli.story.replied": T("  回复:{replied_at} {replied_by}", "  replied: {replied_at} {replied_by}"),
    "cli.story.not_replied": T("未回复", "not yet"),
    "cli.story.order": T("{kind} {number}:{department},{worker},费用 {fee} 元",
                         "{kind} {number}: {department}, {worker}, fee {fee}"),
    "cli.story.order_times": T("  开单 {issued_at},约定 {scheduled_for},完工 {completed_at},验收 {accepted_at} {accepted_by}",
                               "  issued {issued_at}, scheduled {scheduled_for}, completed {completed_at}, accepted "
                               "{accepted_at} {accepted_by}"),
    "cli.story.no_time": T("—", "-"),
    "cli.story.receipt": T("票据 {number}:{order} 收 {amount} 元({method}),{collected_at} {collected_by},{state}{why};交款 "
                           "{handover}",
                           "Receipt {number}: {order} {amount} ({method}) {collected_at} by {collected_by}, "
                           "{state}{why}; handover {handover}"),
    "cli.story.not_handed_over": T("未交", "not yet"),
    "cli.story.handover": T("交款 {number}:{handed_by} → {cashier},{handed_at},应交 {declared},实点 {counted}",
                            "Handover {number}: {handed_by} -> {cashier}, {handed_at}, declared {declared}, counted "
                            "{counted}"),
    "cli.story.confirmed": T(",财务已确认", ", confirmed by finance"),
    # -- bianmin demo (commands/demo.py)
    "cli.demo.built": T("演示月份 {month}:服务处 {offices},种子 {seed},数据库 {database}",
                        "Demo month {month}: offices {offices}, seed {seed}, database {database}"),
    "cli.demo.list_sep": T("、", ", "),
    "cli.demo.figures": T("  通知单 {orders} 张,验收 {accepted} 单,收据 {receipts} 张(现金 ¥{revenue_cash},电子支付 "
                          "¥{revenue_electronic}),返修 {rework} 单,电话登记 {phone_requests} 个",
                          "  {orders} work orders, {accepted} accepted, {receipts} receipts (cash ¥{revenue_cash}, "
                          "e-payment ¥{revenue_electronic}), {rework} reworks, {phone_requests} phone requests"),
    "cli.demo.planted": T("预设问题与月末检查结果", "Planted problems, as found at the month's end"),
    "cli.demo.problem": T("问题", "problem"),
    "cli.demo.office": T("服务处", "office"),
    "cli.demo.reference": T("编号", "reference"),
    "cli.demo.alerts": T("提醒", "alerts"),
    "cli.demo.sent_to": T("发给", "sent to"),
    "cli.demo.report_rows": T("报表", "report rows"),
    "cli.demo.unexpected": T("未预设却被发现:", "Found but not planted: "),
    "cli.demo.figures_title": T("报表数字与生成器自己的计数", "Report figures vs the generator's counts"),
    "cli.demo.figure": T("指标", "figure"),
    "cli.demo.generator": T("生成器", "generator"),
    "cli.demo.report": T("报表", "report"),
    "cli.demo.delivered": T("提醒:已发送 {sent} 份汇总到 {to}", "Alerts: {sent} digest message(s) delivered to {to}"),
    "cli.demo.report_file": T("报表:{path}", "Report: {path}"),
    "cli.demo.all_found": T("每个预设问题都恰好被发现一次,报表数字与生成器一致。",
                            "Every planted problem was found exactly once and the figures agree."),
    "cli.demo.missed": T("有预设问题未被发现或被重复发现,见上表。", "Something planted was missed or found twice: see above."),
    # -- bianmin import (commands/imports.py)
    "cli.imports.file_needed": T("请给出要导入的文件,或用 --template 生成模板", "Give the file to import, or --template PATH"),
    "cli.imports.template_written": T("导入模板已写入:{path}", "Import template written to {path}"),
    "cli.imports.title": T("导入 {file}", "Import of {file}"),
    "cli.imports.dry_run": T("(试导入:未写入)", " (dry run: nothing written)"),
    "cli.imports.sheet": T("工作表", "sheet"),
    "cli.imports.kind": T("类别", "kind"),
    "cli.imports.rows": T("行数", "rows"),
    "cli.imports.kept": T("导入", "kept"),
    "cli.imports.present": T("已存在", "already present"),
    "cli.imports.rejected": T("退回", "rejected"),
    "cli.imports.ignored_sheets": T("未导入的工作表(不是台账):", "Sheets ignored (not a ledger kind): "),
    "cli.imports.more_rejects": T("  ... {count} 行未列出", "  ... {count} more"),
    "cli.imports.rejects_file": T("退回的行已写入 {path},改正后直接导入该文件即可。",
                                  "Rejected rows written to {path}: correct them there and import that file."),
    # -- bianmin run (commands/run.py)
    "cli.run.digests_sent": T("已发送 {sent} 份汇总,{failed} 份发送失败(稍后重试)",
                              "{sent} digest(s) sent, {failed} failed (they are retried later)"),
    "cli.run.level": T("级别", "Level"),
    "cli.run.order_request": T("单号", "Order / request"),
    "cli.run.address": T("地址", "Address"),
    "cli.run.resident": T("业主", "Resident"),
    "cli.run.phone": T("电话", "Phone"),
    "cli.run.holder": T("经办人", "Holder"),
    "cli.run.to": T("通知", "To"),
    "cli.run.field": T("项目", "Field"),
    "cli.run.value": T("值", "Value"),
    "cli.run.title": T("{flow}:截至 {as_of}(按 {judged_at} 判定)", "{flow} as of {as_of} (judged at {judged_at})"),
    "cli.run.replay": T("回放:提醒表已有更晚时刻的检查结果,本次只报告,不写入",
                        "Replay: the outbox already holds a later run; reported only, nothing recorded"),
    "cli.run.tags_suffix": T(":{tags}", ": {tags}"),
    # -- bianmin office/staff/price/db (commands/setup.py)
    "cli.setup.office_added": T("已添加服务处 {office}", "Office {office} added"),
    "cli.setup.community_added": T("已添加小区 {community}", "Community {community} added"),
    "cli.setup.staff_member_added": T("已添加员工 {staff}({dept}/{role})", "Staff member {staff} added ({dept}/{role})"),
    "cli.setup.price": T("价目 {price}:{category} {fee} 元", "Price {price}: {category} {fee}"),
    "cli.setup.db_current": T("数据库已是最新结构(版本 {revision}):{shown}", "Database at schema revision {revision}: {shown}"),
    # -- bianmin tally (commands/tally.py)
    "cli.tally.month": T("月份", "Month"),
    "cli.tally.version": T("版本", "Version"),
    "cli.tally.sent": T("已发送", "Sent"),
    "cli.tally.findings": T("问题数", "Findings"),
    "cli.tally.file": T("文件", "File"),
    "cli.tally.nothing_to_report": T("没有需要汇总的月份(各月均已生成报表)。", "No month to report: every month has its report."),
    "cli.tally.monthly_tally": T("月度汇总", "Monthly tally"),
    "cli.tally.send_busy": T("另一运行正在发送", "being sent by another run"),
    "cli.tally.group": T("全集团", "group"),
    "cli.tally.send_failed": T("发送失败,下次重试", "failed, retried next run"),
    "cli.tally.sent_before": T("此前已发送", "sent before"),
    # -- the monthly tally's outcome per report
    "cli.tally.status.new": T("新报表", "new"),
    "cli.tally.status.new-version": T("新版本", "new version"),
    "cli.tally.status.unchanged": T("无变化", "unchanged"),
    "cli.tally.status.concurrent": T("另一运行已生成", "made by a concurrent run"),
    "cli.tally.status.pending": T("补发未发出的报表", "unsent report retried"),
    "cli.tally.status.final": T("终版报行政部", "final to administration"),
    # -- the departments' sign-off (commands/signoff.py)
    "cli.signoff.run": T("{month} 签字确认:第{version}版,{state},本次写入通知 {notices} 条。",
                         "{month} sign-off: v{version}, {state}, {notices} notice(s) written."),
    "cli.signoff.final.confirmed": T("四方均已确认,终版已报行政部。", "All four confirmed: the final went to administration."),
    "cli.signoff.final.deadline": T("确认期限已过,终版已按期报送(注明未确认的部门)。",
                                    "The deadline passed: the final went, marked with who did not confirm."),
    "cli.signoff.heading": T("{month} 月报签字确认:第{version}版,{state},期限 {deadline}",
                             "{month} report sign-off: v{version}, {state}, deadline {deadline}"),
    "cli.signoff.state.awaiting-signoff": T("待各部门确认", "awaiting sign-off"),
    "cli.signoff.state.sent": T("已报行政部", "sent"),
    "cli.signoff.party": T("部门", "Party"),
    "cli.signoff.by": T("确认人", "By"),
    "cli.signoff.at": T("时间", "At"),
    "cli.signoff.party.cs": T("客服部", "customer service"),
    "cli.signoff.party.finance": T("财务部", "finance"),
    "cli.signoff.party.engineering": T("工程部", "engineering"),
    "cli.signoff.party.cleaning": T("保洁部", "cleaning"),
    "cli.signoff.party_state.awaiting": T("未确认", "awaiting"),
    "cli.signoff.party_state.confirmed": T("已确认", "confirmed"),
    "cli.signoff.party_state.disputed": T("有异议", "disputed"),
    "cli.signoff.dispute": T("异议 {party} 第{version}版({by}):{note} — {ended}",
                             "Dispute {party} v{version} ({by}): {note} — {ended}"),
    "cli.signoff.ended.open": T("未了结", "open"),
    "cli.signoff.ended.corrected": T("已更正", "corrected"),
    "cli.signoff.ended.withdrawn": T("已撤回", "withdrawn"),
    "cli.signoff.confirmed": T("{party}已确认 {month} 第{version}版;尚有 {waiting} 个部门未确认。",
                               "{party} confirmed {month} v{version}; {waiting} part(ies) still to confirm."),
    "cli.signoff.disputed": T("{party}对 {month} 第{version}版提出异议;请经前台更正台账,下次汇总生成新版本。",
                              "{party} disputed {month} v{version}; correct the ledger through the desk and the next "
                              "run makes a new version."),

    # == the ledger's own names ====================================================================================
    # what a refusal names (`{what:thing}`, the desk's tables; models/desk/rules.py WHAT)
    # the departments' sign-off of the monthly report (models/signoff/)
    "signoff_bad_party": T("部门 {value} 不参与月报确认(可选:{parties})",
                           "{value} is not a party of the sign-off: use one of {parties}"),
    "signoff_none": T("{month} 的月报尚未交各部门确认(先运行 bianmin run monthly-tally)",
                      "The report of {month} has not been put before the departments (run bianmin run monthly-tally)"),
    "signoff_closed": T("{month} 的月报(第{version}版)已报行政部,不能再确认或提出异议",
                        "The report of {month} (v{version}) has gone to administration: no more answers are taken"),
    "signoff_wrong_party": T("{by} 不是{party:department}的确认人(财务部经理、工程部/保洁部主管、客服部经理)",
                             "{by} may not answer for {party:department}: finance's manager, engineering's or "
                             "cleaning's supervisor, customer service's manager"),
    "signoff_not_current": T("{month} 的第{version}版已不是当前版本(当前为第{current}版)",
                             "v{version} of {month} is no longer the current version (v{current} is)"),
    "signoff_note_required": T("提出异议须写明问题(--note)", "A dispute needs a note saying what is wrong (--note)"),
    "signoff_unknown_person": T("找不到员工或控制台用户:{who}", "No staff member or console user {who}"),
    "thing.office": T("服务处", "office"),
    "thing.community": T("小区", "community"),
    "thing.staff": T("员工", "staff member"),
    "thing.price_item": T("价目", "price item"),
    "thing.request": T("登记", "request"),
    "thing.work_order": T("通知单", "work order"),
    "thing.receipt": T("票据", "receipt"),
    "thing.handover": T("交款", "handover"),
    "thing.department_report": T("部门记录", "department report"),
    # the desk's actions only CS may take (`{action:action}`, models/desk/rules.py require_cs)
    "action.register": T("登记", "register"),
    "action.reply": T("回复", "reply"),
    "action.issue": T("开通知单", "issue"),
    "action.callback": T("回访", "callback"),
    # service categories (`{category:category}`; models/rules.py scope_of)
    "category.plumbing": T("水管维修安装", "plumbing"),
    "category.electrical": T("电路维修安装", "electrical"),
    "category.cleaning": T("保洁", "cleaning"),
    "category.greening": T("绿化", "greening"),
    "category.appliance": T("家电维修", "appliance"),
    "category.renovation": T("房屋修缮", "renovation"),
    # departments (models/ledger/tables.py DEPARTMENT_NAMES; the seed migration keeps its own copy)
    "department.cs": T("客服部", "Customer service"),
    "department.engineering": T("工程部", "Engineering"),
    "department.cleaning": T("保洁部(环境部)", "Cleaning (environment)"),
    "department.finance": T("财务部", "Finance"),
    "department.administration": T("行政部", "Administration"),
}

# the parts kept in files of their own (digests and flows; the monthly report; the console and its commands):
# one table, one lookup
for _part in (NOTICE_TEXTS, REPORT_TEXTS, CONSOLE_TEXTS, WATCH_TEXTS, DEPLOY_TEXTS):
    assert not _part.keys() & TEXTS.keys(), sorted(_part.keys() & TEXTS.keys())
    TEXTS.update((code, Text(*pair)) for code, pair in _part.items())


def words(code: str, locale: str) -> str:
    """The text of `code` in `locale`, placeholders unfilled; an unknown code shows as itself
    (tests/unit/test_texts.py keeps every code used in the catalogue)."""
    entry = TEXTS.get(code)
    return entry(locale) if entry is not None else code


# areas a placeholder may name its value in: `{department:department}` shows "department.<value>"'s words
TERMS = ("thing", "action", "category", "department")
_NAMED = re.compile(r"\{\w+:(?:%s)\}" % "|".join(TERMS))


class _Words(string.Formatter):
    """str.format, except that a field whose spec is a term area shows its value's words in the locale."""

    def __init__(self, locale: str) -> None:
        self.locale = locale

    def format_field(self, value: Any, format_spec: str) -> str:
        if format_spec in TERMS:
            entry = TEXTS.get(f"{format_spec}.{value}")
            return entry(self.locale) if entry is not None else str(value)  # an unknown code shows as itself
        return super().format_field(value, format_spec)


@lru_cache(maxsize=None)
def _names_terms(template: str) -> bool:
    return _NAMED.search(template) is not None


def render(code: str, locale: str, **values: Any) -> str:
    """The text of `code` in `locale`, its placeholders filled from `values`: a `Text` value in the locale, a
    `{field:area}` placeholder as the catalogue's words for "area.<value>"."""
    template = words(code, locale)
    values = {k: v(locale) if isinstance(v, Text) else v for k, v in values.items()}
    try:
        return _Words(locale).vformat(template, (), values) if _names_terms(template) else template.format(**values)
    except (KeyError, IndexError):
        return f"{template} {values}"
