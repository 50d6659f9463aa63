"""Ways to look at a compiled deployment: the topology as a picture, and where every value came from.

Both read the compiler's graph and plan; neither derives anything of its own.
"""

from __future__ import annotations

from dyncc.compiler import Compilation
from dyncc.compiler.graph import DISCOVERY, FRONTEND, PLANNER, DeploymentGraph, PoolInfo
from dyncc.compiler.rules.memory import pool_budgets
from dyncc.facts.memory import gib

EDGE_LABEL = {
    "requests": "requests",
    "kv_events": "KV events",
    "kv_transfer": "KV transfer",
    "metrics": "metrics",
    "registers": "registers",
}


def _node_lines(graph: DeploymentGraph, node: str) -> list[str]:
    data = graph.node(node)
    if node == FRONTEND:
        router = graph.router
        lines = ["Frontend", f"router: {router.mode}"]
        if router.mode == "kv":
            lines.append(f"block size {router.block_size}" + ("" if router.kv_events else ", approximate"))
        migration = graph.spec.migration.limit
        if migration:
            lines.append(f"migration limit {migration}")
        return lines
    if node == DISCOVERY:
        return ["Discovery"]
    if node == PLANNER:
        return [f"Planner ({graph.spec.planner.mode})"]
    assert isinstance(data, PoolInfo)
    p, s = data, data.spec
    shape = f"TP{s.tensor_parallel}" + (f" PP{s.pipeline_parallel}" if s.pipeline_parallel > 1 else "")
    shape += f" EP{s.expert_parallel}" if s.expert_parallel > 1 else ""
    shape += " +attnDP" if s.attention_dp else ""
    return [f"{p.role}", f"{p.replicas} x {p.gpus_per_worker} GPU", shape]


def _edge_label(graph: DeploymentGraph, u: str, v: str, kind: str) -> str:
    prefill = graph.node(u)
    if kind == "kv_transfer" and isinstance(prefill, PoolInfo):
        return f"KV transfer {prefill.engine.get('cache_transceiver_config.backend')}"
    return EDGE_LABEL[kind]


def _ident(node: str) -> str:
    return node.replace(":", "_")


def _visible_edges(graph: DeploymentGraph) -> list[tuple[str, str, str]]:
    # Registration with discovery is on every node; drawn, it only clutters the picture.
    return [(u, v, str(k)) for u, v, k in sorted(graph.edges()) if k != "registers"]


def _nodes(graph: DeploymentGraph) -> list[str]:
    pool_nodes = sorted(n for n in graph.nodes() if n.startswith("pool:"))
    order = [FRONTEND, *pool_nodes, *(n for n in (PLANNER,) if n in graph)]
    return order


def render_mermaid(graph: DeploymentGraph) -> str:
    lines = ["flowchart LR"]
    for node in _nodes(graph):
        label = "<br/>".join(_node_lines(graph, node))
        shape = ('(["', '"])') if node == FRONTEND else ('{{"', '"}}') if node == PLANNER else ('["', '"]')
        lines.append(f"    {_ident(node)}{shape[0]}{label}{shape[1]}")
    arrows = {"requests": "-->", "kv_events": "-.->", "kv_transfer": "==>", "metrics": "-.->"}
    for u, v, kind in _visible_edges(graph):
        lines.append(f"    {_ident(u)} {arrows[kind]}|{_edge_label(graph, u, v, kind)}| {_ident(v)}")
    return "\n".join(lines) + "\n"


def render_dot(graph: DeploymentGraph) -> str:
    lines = [
        "digraph deployment {",
        "    rankdir=LR;",
        '    node [shape=box, style="rounded", fontname="Helvetica"];',
        '    edge [fontname="Helvetica", fontsize=10];',
    ]
    style = {"requests": "solid", "kv_events": "dashed", "kv_transfer": "bold", "metrics": "dotted"}
    for node in _nodes(graph):
        label = "\\n".join(_node_lines(graph, node))
        lines.append(f'    {_ident(node)} [label="{label}"];')
    for u, v, kind in _visible_edges(graph):
        lines.append(f'    {_ident(u)} -> {_ident(v)} [label="{_edge_label(graph, u, v, kind)}", style={style[kind]}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_text(graph: DeploymentGraph) -> str:
    out = []
    for node in _nodes(graph):
        out.append(" | ".join(_node_lines(graph, node)))
        for u, v, kind in _visible_edges(graph):
            if u == node:
                out.append(f"    --{_edge_label(graph, u, v, kind)}--> {' | '.join(_node_lines(graph, v)[:1])}")
    return "\n".join(out) + "\n"


def explain(compilation: Compilation) -> str:
    """Placement table, totals, and each pool's engine config with the origin of every value."""
    plan, graph, source = compilation.plan, compilation.graph, compilation.loaded.source
    out = [
        f"# {plan.name}: {plan.total_gpus} GPUs on {plan.placement.nodes_used} node(s) "
        f"({plan.placement.gpus_per_node} GPUs per node)",
        "",
        "## Placement",
        "",
        "| node | GPU | pool | replica | rank |",
        "| --- | --- | --- | --- | --- |",
    ]
    rows = sorted(
        (n, g, w.role, w.replica, rank) for w in plan.placement.workers for rank, (n, g) in enumerate(w.ranks)
    )
    out += [f"| {n} | {g} | {role} | {replica} | {rank} |" for n, g, role, replica, rank in rows]
    out += ["", "| pool | replicas | GPUs per worker | nodes per worker | ranks |", "| --- | --- | --- | --- | --- |"]
    for p in plan.pools:
        out.append(
            f"| {p.role} | {p.replicas} | {p.gpus_per_worker} | {p.nodes_per_worker} | {p.replicas * p.gpus_per_worker} |"
        )
    out += _node_group_lines(compilation) + _memory_lines(compilation)
    for info in graph.pools():
        out += ["", f"## {info.role}: engine config", "", "| key | value | from |", "| --- | --- | --- |"]
        for key, value in _leaves(info.engine.config):
            prov = info.engine.sources.get(key)
            out.append(f"| {key} | {value!r} | {_origin(prov, source)} |")
        out.append(
            f"| (flag) --publish-kv-events | {info.publish_kv_events} | "
            f"{_origin(info.publish_kv_events_source, source)} |"
        )
    return "\n".join(out) + "\n"


def _node_group_lines(compilation: Compilation) -> list[str]:
    groups = compilation.plan.placement.node_groups
    if not groups:
        return []
    out = [
        "",
        "## Node groups",
        "",
        "| group | GPU | GPUs per node | nodes | pools |",
        "| --- | --- | --- | --- | --- |",
    ]
    for g in groups:
        nodes = f"{g.first_node}" if g.nodes_used == 1 else f"{g.first_node}-{g.first_node + g.nodes_used - 1}"
        out.append(f"| {g.name} | {g.gpu_type} | {g.gpus_per_node} | {nodes} | {', '.join(g.roles)} |")
    return out


def _memory_lines(compilation: Compilation) -> list[str]:
    """One GPU of each pool's workers: weights, working set, runtime, and the KV cache left (DYN140/141)."""
    graph = compilation.graph
    budgets = pool_budgets(graph)
    out = ["", "## GPU memory (one GPU of each worker)", ""]
    if not budgets:
        reason = graph.facts.arch_source if graph.facts.arch is None else "no GPU type dyncc has facts for"
        return out + [f"Not checked: {reason}."]
    out += [
        f"Model facts: {graph.facts.arch_source}.",
        "",
        "| pool | GPU | memory | weights | working set | runtime | KV cache | requests at full length |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for role, (gpu, b) in budgets.items():
        held = f"{b.sequences} x {b.sequence_tokens} tokens" if b.fits else "none: does not fit (DYN140)"
        out.append(
            f"| {role} | {gpu.name} | {gib(b.capacity)} | {gib(b.weights)} | {gib(b.working_set)} | "
            f"{gib(b.overhead)} | {gib(b.kv_cache)} ({b.free_fraction:g} of the rest) | {held} |"
        )
    return out


def _leaves(config: dict, prefix: str = ""):
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from _leaves(value, dotted + ".")
        else:
            yield dotted, value


def _origin(prov, source) -> str:
    if prov is None:
        return "parent set in spec"
    if prov.kind == "user":
        # Only a key the file has is given a line: locate() would fall back to the nearest parent's.
        loc = source.locate(prov.path) if prov.path and source.has(prov.path) else None
        return f"spec {prov.detail} ({loc})" if loc else f"spec {prov.detail}"
    if prov.kind == "rule":
        return f"rule {prov.detail}"
    return f"default: {prov.detail}"
