"""The catalogue's part for `bianmin watch` (`flow.watch.*`: the ops messages; `cli.watch.*`: the command's output):
merged into `models.texts.TEXTS`, the one catalogue. Plain (zh_CN, en) pairs."""
from __future__ import annotations

WATCH_TEXTS: dict[str, tuple[str, str]] = {
    # == the ops messages (flows/watch.py) ===========================================================================
    "flow.watch.title": ("【便民监控】{what}", "[bianmin watch] {what}"),
    "flow.watch.title_resolved": ("【便民监控】已恢复:{what}", "[bianmin watch] resolved: {what}"),
    "flow.watch.stale": ("流程 {flow} 没有按计划运行", "Flow {flow} is not running on schedule"),
    "flow.watch.stale_detail": ("上次成功运行:{last};应运行而未成功的计划时间:{missed}",
                                "last successful run: {last}; scheduled runs missed: {missed}"),
    "flow.watch.never": ("无", "never"),
    "flow.watch.failing": ("发往 {tag} 的提醒发送失败", "Deliveries to {tag} are failing"),
    "flow.watch.failing_detail": ("{alerts} 条提醒未被接收(最早 {since});最近的错误:{error}",
                                  "{alerts} alert(s) not accepted (oldest {since}); last error: {error}"),
    "flow.watch.late": ("发往 {tag} 的提醒积压未发", "Deliveries to {tag} are held up"),
    "flow.watch.late_detail": ("{alerts} 条提醒自 {since} 起待发,已超过 {minutes} 分钟:dispatch 是否在运行?",
                               "{alerts} alert(s) due since {since}, over {minutes} min: is dispatch running?"),
    "flow.watch.prefect": ("Prefect 服务器无响应", "The Prefect server does not answer"),
    "flow.watch.prefect_detail": ("{url} 的健康检查失败:{reason}", "health check of {url} failed: {reason}"),
    "flow.watch.prefect_skipped": ("未设置 PREFECT_API_URL:不检查 Prefect 服务器",
                                   "PREFECT_API_URL is not set: the Prefect server is not checked"),
    "flow.watch.prefect_ok": ("{url} 正常", "{url} answers"),
    "flow.watch.ledger": ("便民数据库无法使用", "bianmin's database cannot be used"),
    "flow.watch.flow_ok": ("上次成功运行:{last}", "last successful run: {last}"),
    "flow.watch.deliveries_ok": ("没有失败或积压的提醒", "nothing failing or held up"),
    "flow.watch.body": ("{detail}\n\n检查时间 {as_of},主机 {host}。问题解除时会再通知一次,期间不再重复。",
                        "{detail}\n\nChecked at {as_of} on {host}. One more message when it clears, none meanwhile."),
    "flow.watch.body_resolved": ("{what}:已于 {as_of} 恢复(问题始于 {since})。",
                                 "{what}: cleared at {as_of} (a problem since {since})."),
    # == bianmin watch (commands/watch.py) ===========================================================================
    "cli.watch.title": ("便民自检(截至 {as_of})", "bianmin watch as of {as_of}"),
    "cli.watch.check": ("检查项", "Check"),
    "cli.watch.state": ("状态", "State"),
    "cli.watch.detail": ("说明", "Detail"),
    "cli.watch.status.ok": ("正常", "ok"),
    "cli.watch.status.problem": ("有问题", "problem"),
    "cli.watch.status.skipped": ("未检查", "skipped"),
    "cli.watch.all_well": ("一切正常。", "All is well."),
    "cli.watch.problems": ("{count} 个问题。", "{count} problem(s)."),
    "cli.watch.sent": ("已通知 ops:{problems} 个新问题,{resolved} 个已恢复。",
                       "Told ops: {problems} new problem(s), {resolved} resolved."),
    "cli.watch.send_failed": ("无法通知 ops(下次检查时重试):{keys}", "Could not tell ops (retried next time): {keys}"),
}
