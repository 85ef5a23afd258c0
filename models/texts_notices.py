"""The catalogue's part for the alert digests and the scheduled flows (`digest.*`, `flow.*`): merged into
`models.texts.TEXTS`, the one catalogue, and kept in its own file so that no module passes 600 lines. Plain
(zh_CN, en) pairs."""
from __future__ import annotations

NOTICE_TEXTS: dict[str, tuple[str, str]] = {
    # == alert digests (notifications/templates/alert_digest.*.j2): "digest.*" =====================================
    # the plain-text digest (alert_digest.txt.j2); a leading space is part of the words where zh_CN has none
    "digest.critical": ("严重", "CRITICAL"),
    "digest.warning": ("警告", "WARNING"),
    "digest.notice": ("提示", "NOTICE"),
    "digest.escalated": ("({level}级升级)", " (escalated, level {level})"),
    "digest.days_hours": ("{days}天{hours}小时", "{days} d {hours} h"),
    "digest.hours_minutes": ("{hours}小时{minutes}分", "{hours} h {minutes} min"),
    "digest.minutes": ("{minutes}分钟", "{minutes} min"),
    "digest.title": ("【便民提醒】{tag}:{total} 条待处理", "[bianmin] {tag}: {total} open"),
    "digest.title_counts": ("(严重 {critical}、警告 {warning}、提示 {notice})",
                             " ({critical} critical, {warning} warning, {notice} notice)"),
    "digest.title_resolved": (",{resolved} 条已解除", ", {resolved} resolved"),
    "digest.header": ("截至 {as_of},以下事项需要 {tag} 处理(按严重程度、时长排序):",
                       "As of {as_of}, for {tag} (most severe and oldest first):"),
    "digest.reminder": (" (再次提醒)", " (reminder)"),
    "digest.office": ("服务处 {office}", "office {office}"),
    "digest.resident": ("业主 {resident} {phone}", "resident {resident} {phone}"),
    "digest.overdue_by": ("已逾期 {duration}", "overdue by {duration}"),
    "digest.due": ("(应于 {due_at} 前)", " (due {due_at})"),
    "digest.held_by": ("责任人 {holder}", "held by {holder}"),
    "digest.worker": ("施工人员 {worker}", "worker {worker}"),
    "digest.amount": ("金额 ¥{amount}", "amount CNY {amount}"),
    "digest.receipts": ("票据 {receipts}", "receipts {receipts}"),
    "digest.list_sep": ("、", ", "),
    "digest.key": ("编号 {key}", "key {key}"),
    "digest.resolved_line": ("✔ 已解除:{label} {number}", "✔ resolved: {label} {number}"),
    "digest.resolved_office": ("(服务处 {office})", " (office {office})"),
    "digest.resolved_header": ("已解除:", "Resolved:"),
    "digest.resolved_acked": ("(确认人 {name})", " (acknowledged by {name})"),
    "digest.footer": ("确认收到:bianmin alerts ack <编号> --by <姓名>",
                       "To acknowledge: bianmin alerts ack <key> --by <name>"),
    "digest.truncated": ("…(已截断)", "… (truncated)"),
    # the Markdown digest (alert_digest.md.j2), where its words differ from the plain text's
    "digest.md.heading": ("便民提醒", "bianmin alerts"),
    "digest.md.as_of": ("截至 {as_of}(按严重程度、时长排序)", "As of {as_of} (most severe and oldest first)"),
    "digest.md.reminder": ("(再次提醒)", " (reminder)"),
    "digest.md.overdue": ("已逾期 {duration}", "overdue {duration}"),
    "digest.md.worker": ("施工 {worker}", "worker {worker}"),
    "digest.md.amount": ("¥{amount}", "CNY {amount}"),
    "digest.md.resolved": ("已解除", "resolved"),
    "digest.md.link": ("在控制台处理", "Open in the console"),
    "digest.md.resolved_header": ("已解除", "Resolved"),
    "digest.md.footer": ("确认收到:`bianmin alerts ack <编号> --by <姓名>`",
                          "To acknowledge: `bianmin alerts ack <key> --by <name>`"),

    # == scheduled flows and the server: "flow.*" ================================================================
    # the flows' log lines and ops messages (flows/cash.py, flows/tally.py, flows/hooks.py)
    "flow.cash.day_off": ("现金检查 {day}:休息日,不做检查(未解决的提醒保持不变)",
                           "cash-check {day}: a day off, nothing evaluated (open findings stay open)"),
    "flow.cash.nothing": ("无", "nothing"),
    # a sign-off draft's line in the party's digest (flows/signoff.py): what its view holds
    "flow.signoff.draft": ("请在控制台核对本部门数据({rows} 行)及相关问题 {findings} 项,确认或提出异议",
                           "Check your department's figures ({rows} rows) and the {findings} finding(s) that concern "
                           "it in the console; confirm or dispute"),
    "flow.cash.replayed": ("现金检查 {day} 回放(截至 {when}):{found};提醒表已有更晚的检查结果,本次不写入",
                            "cash-check {day} replayed as of {when}: {found}; the outbox already holds a later check,"
                            " nothing recorded"),
    "flow.cash.summary": ("现金检查 {day}(截至 {when}):{found};新增提醒 {new} 条,仍未解决 {seen_again} 条,已解决 {resolved} 条",
                           "cash-check {day} as of {when}: {found}; alerts {new} new, {seen_again} still open, "
                           "{resolved} resolved"),
    "flow.tally.nothing": ("月度汇总:没有需要汇总的月份", "monthly-tally: no month to report"),
    "flow.tally.summary": ("月度汇总:{reports}", "monthly-tally: {reports}"),
    "flow.tally.failed": ("{total} 份报表中 {failed} 份失败({names});其余 {done} 份已生成并发送;已通知 ops,下次运行重试",
                           "{failed} of {total} report(s) failed ({names}); the other {done} were written and sent; "
                           "ops was alerted and the next run retries them"),
    "flow.failed_title": ("bianmin 流程失败:{flow}", "bianmin flow failed: {flow}"),
    # bianmin serve and its local Prefect server (flows/serve.py)
    "flow.serve.local_not_ready": ("本地 Prefect 服务器在 {startup_timeout:.0f} 秒内未就绪(日志 {log_path}):\n{tail}",
                                    "The local Prefect server was not healthy within {startup_timeout:.0f} s (log "
                                    "{log_path}):\n{tail}"),
    "flow.serve.temporary_not_ready": ("临时 Prefect 服务器在 {startup_timeout:.0f} 秒内未就绪(日志 {log_path}):\n{tail}",
                                        "The temporary Prefect server was not healthy within {startup_timeout:.0f} s "
                                        "(log {log_path}):\n{tail}"),
    "flow.serve.local_ready": ("本地 Prefect 服务器已就绪:{api_url}(界面 http://127.0.0.1:{port},状态目录 {prefect_home})",
                                "Local Prefect server ready at {api_url} (UI http://127.0.0.1:{port}, state in "
                                "{prefect_home})"),
    "flow.serve.using_server": ("使用 Prefect 服务器 {url}", "Serving against the Prefect server at {url}"),
    "flow.serve.port_in_use": ("端口 {port} 已被占用(可能已有 Prefect 服务器或其他程序在运行)。请改用 BIANMIN_PREFECT_PORT 指定空闲端口,或设置 "
                                "PREFECT_API_URL 指向已有的服务器。",
                                "Port {port} is already in use (a Prefect server or another program is running there)"
                                ". Choose a free port with BIANMIN_PREFECT_PORT, or set PREFECT_API_URL to use an "
                                "existing server."),
    "flow.serve.local_stopped": ("本地 Prefect 服务器已停止", "Local Prefect server stopped"),
    "flow.serve.local_exited": ("本地 Prefect 服务器启动失败(日志 {log_path}):\n{tail}",
                                 "The local Prefect server exited during startup (log {log_path}):\n{tail}"),
    "flow.serve.temporary_exited": ("临时 Prefect 服务器启动失败(退出码 {exit_code},日志 {log_path}):\n{tail}",
                                     "The temporary Prefect server exited during startup (exit code {exit_code}, log "
                                     "{log_path}):\n{tail}"),
    # a year the holiday calendar lacks (models/calendar.py CalendarGap)
    "calendar.gap": ("日历警告:{year} 年的调休上班日尚未录入日历数据,{year} 年的周末一律按休息日计算。请在日历覆盖文件({where})的 [working_days] 中加入 {year} "
                      "年的调休上班日,并把 {year} 列入 complete_years。",
                      "Calendar warning: the make-up working days (调休) of {year} are not in the calendar data; "
                      "weekends of {year} are treated as days off. Add {year}'s working days to the override file ("
                      "{where}) under [working_days] and list {year} in complete_years."),
}
