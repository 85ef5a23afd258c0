"""The catalogue's part for group scale (`deploy.*`, `flow.fanout.*`): `bianmin deploy`, the per-office fan-out
and the ops automations. Merged into `models.texts.TEXTS`; plain (zh_CN, en) pairs."""
from __future__ import annotations

DEPLOY_TEXTS: dict[str, tuple[str, str]] = {
    # bianmin deploy (commands/deploy.py, flows/deploy.py)
    "deploy.no_api_url": ("未设置 PREFECT_API_URL:bianmin deploy 需要一个 Prefect 服务器,如 "
                          "PREFECT_API_URL=http://prefect.internal:4200/api(单机请用 bianmin serve)",
                          "PREFECT_API_URL is not set: bianmin deploy needs a Prefect server, e.g. "
                          "PREFECT_API_URL=http://prefect.internal:4200/api (one machine: use bianmin serve)"),
    "deploy.bad_api_url": ("PREFECT_API_URL 不是 http(s) 地址:{url}", "PREFECT_API_URL is not an http(s) URL: {url}"),
    "deploy.unreachable": ("Prefect 服务器 {url} 无法访问:{error}", "The Prefect server at {url} does not answer: {error}"),
    "deploy.failed": ("部署到 {url} 失败:{error}", "Deploying to {url} failed: {error}"),
    "deploy.pool_created": ("工作池 {pool}(process)已创建", "Work pool {pool} (process) created"),
    "deploy.pool_exists": ("工作池 {pool}({type})已存在", "Work pool {pool} ({type}) exists"),
    "deploy.pool_wrong_type": ("工作池 {pool} 已存在,但类型是 {type},不是 process:请换一个 BIANMIN_WORK_POOL",
                               "Work pool {pool} exists with type {type}, not process: choose another "
                               "BIANMIN_WORK_POOL"),
    "deploy.deployment": ("部署 {name}:{schedules};并发 {limit}({strategy})",
                          "deployment {name}: {schedules}; concurrency {limit} ({strategy})"),
    "deploy.no_schedule": ("无计划(由父运行按服务处启动)", "no schedule (started per office by its parent run)"),
    "deploy.automation": ("自动化 {name}:{action}", "automation {name}: {action}"),
    "deploy.created": ("已创建", "created"),
    "deploy.updated": ("已更新", "updated"),
    "deploy.unchanged": ("未变", "unchanged"),
    "deploy.removed": ("已删除(不再需要)", "removed (no longer wanted)"),
    "deploy.no_webhook": ("未配置 BIANMIN_OPS_WEBHOOK_URL,也没有 Webhook 块 {block}:迟到、崩溃、失败运行的自动化未创建",
                          "Neither BIANMIN_OPS_WEBHOOK_URL nor a Webhook block {block} is set: no automations for late, "
                          "crashed and failed runs were created"),
    "deploy.webhook_saved": ("ops Webhook 已保存到 Prefect 块 {block}(地址不显示)",
                             "The ops webhook is kept in the Prefect block {block} (its URL is not shown)"),
    "deploy.done": ("完成:{deployments} 个部署,{automations} 个自动化,工作池 {pool},服务器 {url}",
                    "Done: {deployments} deployments, {automations} automations, work pool {pool}, server {url}"),
    # what the ops webhook receives (Prefect renders the {run} part with Jinja when it calls the webhook)
    "deploy.webhook_message": ("【便民】Prefect 运行异常:{run}", "[bianmin] Prefect run needs attention: {run}"),
    # the per-office fan-out (flows/fanout.py)
    "flow.fanout.summary": ("{flow}:{offices} 个服务处分 {runs} 个子运行;完成 {done},失败 {failed}{names}",
                            "{flow}: {offices} office(s) in {runs} child run(s); {done} done, {failed} failed{names}"),
    "flow.fanout.failed": ("{flow}:{failed} 个服务处失败({names});其余已完成;已通知 ops,下次运行只重做失败的",
                           "{flow}: {failed} office(s) failed ({names}); the others are done; ops was alerted and the "
                           "next run redoes only those"),
    "flow.fanout.tally": ("{months}:{offices} 个服务处的报表分 {runs} 个子运行;{done} 个成功,{failed} 个未成功"
                          "(其服务处由本次运行自己重做);接着汇总集团报表",
                          "{months}: the reports of {offices} office(s) in {runs} child run(s); {done} ended well, "
                          "{failed} did not (this run redoes their offices itself); now the group's report"),
}
