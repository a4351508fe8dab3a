#!/usr/bin/python3
"""plot.py - turns afmt-bench JSON lines into a plot (GB/s per case) and a markdown
summary (the tables and the target check of docs/performance.md).

    /usr/bin/python3 benchmarks/plot.py RESULTS.jsonl [--png OUT.png] [--markdown OUT.md]

Uses Debian's python3-matplotlib (apt-get install python3-matplotlib) for the plot;
the markdown needs nothing beyond the standard library.
"""
import argparse
import json
import sys
from collections import OrderedDict

BACKEND_ORDER = ["afmt:lz4+sh", "hdf5:lz4+sh", "hdf5:none", "mpiio", "mpiio-ind", "codec:lz4+sh"]
COLORS = {"afmt": "#1f77b4", "hdf5:lz4": "#d62728", "hdf5:none": "#ff9896", "mpiio-ind": "#c7c7c7",
          "mpiio": "#7f7f7f", "codec": "#2ca02c"}


def color_of(case):
    for k, c in COLORS.items():
        if case.startswith(k):
            return c
    return "#9467bd"


def dirkind(d):
    return "shm" if d.startswith("/dev/shm") else "disk"


def scenario(r):
    wl = r["workload"] + ("/" + r["content"] if r.get("content") else "")
    nb = r["bytes_per_rank"]
    size = f"{nb // 1048576}MiB" if nb % 1048576 == 0 else f"{nb // 1024}KiB"
    s = f"{wl} {r['np']}r"
    if r.get("readers", r["np"]) not in (r["np"], 0):
        s += f"->{r['readers']}r"
    s += f" {size} {dirkind(r['dir'])}"
    try:
        if r["workload"] == "field" and int(r["slab"].split("x")[0]) % int(r["chunk"].split("x")[0]):
            s += " shared-chunks"
    except (KeyError, ValueError):
        pass
    if r.get("steps", 1) > 1:
        s += f" T{r['steps']}"
    if r.get("attrs"):
        s += f" {r['attrs']}attrs/array"
    return s


def load(path):
    rows = []
    with open(path) as fp:
        for line in fp:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    return rows


def is_scaling(r):
    return r["workload"] == "small" and r.get("readers") == 0


def main_rows(rows):
    return [r for r in rows if r["workload"] in ("field", "vpic", "small") and not is_scaling(r)]


def group(rows):
    g = OrderedDict()
    for r in rows:
        g.setdefault(scenario(r), []).append(r)
    for k in g:
        g[k].sort(key=lambda r: BACKEND_ORDER.index(r["case"]) if r["case"] in BACKEND_ORDER else 99)
    return g


def fmt_t(s):
    if not s:
        return "-"
    return f"{s['median']:.3f} ({s['min']:.3f}-{s['max']:.3f})"


def plot(rows, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = group(main_rows(rows))
    if not g:
        return
    cases = []
    for rs in g.values():
        for r in rs:
            if r["case"] not in cases:
                cases.append(r["case"])
    cases.sort(key=lambda c: BACKEND_ORDER.index(c) if c in BACKEND_ORDER else 99)
    names = list(g.keys())
    fig, axes = plt.subplots(2, 1, figsize=(max(10, 1.1 * len(names) + 3), 9), sharex=True)
    width = 0.8 / max(1, len(cases))
    for ax, kind in zip(axes, ("write", "read")):
        for ci, c in enumerate(cases):
            xs, ys, lo, hi = [], [], [], []
            for si, n in enumerate(names):
                r = next((r for r in g[n] if r["case"] == c), None)
                if not r or f"{kind}_s" not in r:
                    continue
                nbytes = r["raw_bytes"] if kind == "write" else r.get("read_bytes", r["raw_bytes"])
                t = r[f"{kind}_s"]
                gbps = nbytes / t["median"] / 1e9
                xs.append(si + (ci - (len(cases) - 1) / 2) * width)
                ys.append(gbps)
                lo.append(gbps - nbytes / t["max"] / 1e9)
                hi.append(nbytes / t["min"] / 1e9 - gbps)
            ax.bar(xs, ys, width, yerr=[lo, hi], capsize=2, label=c, color=color_of(c),
                   edgecolor="black", linewidth=0.3)
        ax.set_ylabel(f"{kind} GB/s (raw bytes, median;\nbars: min-max over reps)")
        ax.set_yscale("log")
        ax.grid(axis="y", which="both", alpha=0.3)
    axes[0].legend(ncol=len(cases), fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 1.18))
    axes[1].set_xticks(range(len(names)))
    axes[1].set_xticklabels(names, rotation=35, ha="right", fontsize=8)
    first = rows[0]
    fig.suptitle(f"afmt-bench {first.get('label', '')} {first.get('date', '')} "
                 f"git {first.get('git', '')}", y=0.995, fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def find(rows, **kw):
    for r in rows:
        if all(r.get(k) == v for k, v in kw.items()):
            return r
    return None


def targets(rows, out):
    """The issue's targets, from the 2-rank /dev/shm field rows of the largest size."""
    field = [r for r in rows if r["workload"] == "field" and r["np"] == 2 and
             dirkind(r["dir"]) == "shm" and r.get("steps", 1) == 1]
    if not field:
        return
    size = max(r["bytes_per_rank"] for r in field)
    lo = min(r["load_min"] for r in field if r["bytes_per_rank"] == size)
    hi = max(r["load_max"] for r in field if r["bytes_per_rank"] == size)
    out.append(f"\nTargets (medians, 2 ranks, {size / 1048576:g} MiB per rank, LZ4 + shuffle, "
               f"/dev/shm, one run; load {lo:.1f}-{hi:.1f} on 2 cores). [bound] = HDF5 time / "
               "codec-alone time, the largest speedup over HDF5 that a library without extra "
               "threads can reach on this machine:\n")
    out.append("| content | ratio | write speedup vs HDF5+LZ4 (>= 5) [bound] | afmt / raw MPI-IO "
               "write time (<= 1.0 if ratio >= 2) | read speedup vs HDF5+LZ4 (>= 3) [bound] | "
               "afmt write / (codec + write of compressed) (<= 1.2) | afmt read / codec read |")
    out.append("|---|---|---|---|---|---|---|")
    for content in ("smooth", "noisy", "const"):
        sel = [r for r in field if r["content"] == content and r["bytes_per_rank"] == size]
        a = find(sel, case="afmt:lz4+sh")
        h = find(sel, case="hdf5:lz4+sh")
        m = find(sel, case="mpiio")
        c = find(sel, case="codec:lz4+sh")
        if not a:
            continue

        def ok(v, good):
            return f"{v:.2f} {'met' if good else 'MISSED'}"

        wa = a["write_s"]["median"]
        cells = [content, f"{a['ratio']:.2f}"]

        def bound(kind):
            # The best any library can do with one thread per rank: HDF5 time / codec-alone time.
            if h and c and f"{kind}_s" in h and f"{kind}_s" in c:
                return f" [{h[kind + '_s']['median'] / c[kind + '_s']['median']:.2f}]"
            return ""

        cells.append(ok(h["write_s"]["median"] / wa, h["write_s"]["median"] / wa >= 5) + bound("write")
                     if h else "-")
        if m:
            v = wa / m["write_s"]["median"]
            cells.append(ok(v, v <= 1.0) if a["ratio"] >= 2 else f"{v:.2f} (n/a: ratio < 2)")
        else:
            cells.append("-")
        if h and "read_s" in a and "read_s" in h:
            v = h["read_s"]["median"] / a["read_s"]["median"]
            cells.append(ok(v, v >= 3) + bound("read"))
        else:
            cells.append("-")
        cells.append(ok(wa / c["write_s"]["median"], wa / c["write_s"]["median"] <= 1.2) if c else "-")
        cells.append(f"{a['read_s']['median'] / c['read_s']['median']:.2f}"
                     if c and "read_s" in a and "read_s" in c else "-")
        out.append("| " + " | ".join(cells) + " |")
    sm = [r for r in rows if r["workload"] == "small" and r["np"] == 4 and r["case"].startswith("afmt")
          and not is_scaling(r)]
    if sm:
        r = sm[0]
        v = r["w_commit_s"]["median"]
        out.append(f"\n- commit of 1000 arrays of 4 KiB per rank, 4 ranks: {v:.3f} s "
                   f"(min {r['w_commit_s']['min']:.3f}, max {r['w_commit_s']['max']:.3f}; "
                   f"define of the 1000 arrays {r['w_create_s']['median']:.3f} s; load "
                   f"{r['load_min']:.1f}-{r['load_max']:.1f}): "
                   f"{'met' if v < 0.2 else 'MISSED'} (< 0.2 s)")
    op = [r for r in rows if r["workload"] == "open"]
    for r in op:
        v = r["open_s"]["median"]
        cpu = (f"; CPU time median {r['open_cpu_s']['median']:.3f} s" if "open_cpu_s" in r else "")
        out.append(f"- afmt_open of {r['layers']} layers / {r['chunks']} chunks "
                   f"({r['file_bytes'] / 1048576:.0f} MiB), 1 rank: {v:.3f} s "
                   f"(min {r['open_s']['min']:.3f}, max {r['open_s']['max']:.3f}{cpu}; "
                   f"load {r.get('load', 0):.1f}): {'met' if v < 1 else 'MISSED'} (< 1 s)")
    mem = [r for r in rows if r["workload"] == "memory"]
    for content in ("smooth", "noisy", "const"):
        ms = [r for r in mem if r["content"] == content]
        if ms:
            worst = max(r["max_rss_kib"] for r in ms)
            lim = ms[0]["limit_kib"]
            out.append(f"- peak RSS per rank, write+commit of {ms[0]['bytes_per_rank'] / 1048576:g}"
                       f" MiB ({content}; /usr/bin/time -v, whole process incl. the "
                       f"benchmark's own data buffer): {worst / 1024:.1f} MiB, limit "
                       f"{lim / 1024:.1f} MiB: {'met' if worst <= lim else 'MISSED'}")


def markdown(rows, path):
    out = []
    g = group(main_rows(rows))
    out.append("| scenario | case | write s median (min-max) | write GB/s | read s median (min-max) "
               "| read GB/s | ratio | load |")
    out.append("|---|---|---|---|---|---|---|---|")
    for n, rs in g.items():
        for r in rs:
            w = r.get("write_s")
            rd = r.get("read_s")
            wg = f"{r['write_GBps']:.3f}" if "write_GBps" in r else "-"
            rg = f"{r['read_GBps']:.3f}" if "read_GBps" in r else "-"
            out.append(f"| {n} | {r['case']} | {fmt_t(w)} | {wg} | {fmt_t(rd)} | {rg} | "
                       f"{r['ratio']:.2f} | {r['load_min']:.1f}-{r['load_max']:.1f} |")
    # afmt phases
    out.append("\nafmt phases (medians over the repetitions, s, the largest over the ranks). "
               "write = the afmt_write calls (gather, shuffle, compression of full blocks); "
               "commit = afmt_commit; compress .. other = the library's own commit timers "
               "(afmt__commit_stats): compress = sealing blocks (LZ4 + checksum) in afmt_write "
               "and commit, exchange = start of the commit up to the end of the shared-chunk "
               "exchange (includes waiting for the slowest rank's afmt_write), other = last "
               "seal, offsets, sharing the footer, index merge:\n")
    out.append("| scenario | create+define | write | commit | close | compress | exchange "
               "| data write | gather | footer | sync | other | open | read | "
               "peak RSS write (MiB, before->peak) |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n, rs in g.items():
        for r in rs:
            if not r["case"].startswith("afmt"):
                continue

            def m(k):
                return f"{r[k]['median']:.3f}" if k in r else "-"

            rss = (f"{r['rss_before_w_mib']['median']:.0f}->{r['rss_peak_w_mib']['median']:.0f}"
                   if "rss_peak_w_mib" in r else "-")
            out.append(f"| {n} | {m('w_create_s')} | {m('w_write_s')} | {m('w_commit_s')} | "
                       f"{m('w_close_s')} | {m('s_compress_s')} | {m('s_exchange_s')} | "
                       f"{m('s_data_write_s')} | {m('s_meta_gather_s')} | {m('s_footer_s')} | "
                       f"{m('s_sync_s')} | {m('s_other_s')} | {m('r_open_s')} | {m('r_read_s')} | "
                       f"{rss} |")
    cz = [(n, r) for n, rs in g.items() for r in rs if r["case"].startswith("codec")]
    if cz:
        out.append("\nThe codec alone (medians, s): the ceiling of a compressed write and read "
                   "on this machine:\n")
        out.append("| scenario | gather | shuffle | compress | = codec | write of compressed "
                   "| read of compressed | decompress + unshuffle |")
        out.append("|---|---|---|---|---|---|---|---|")
        for n, r in cz:
            def m2(k):
                return f"{r[k]['median']:.3f}" if k in r else "-"
            out.append(f"| {n} | {m2('c_gather_s')} | {m2('c_shuffle_s')} | {m2('c_compress_s')} | "
                       f"{m2('c_codec_s')} | {m2('c_cwrite_s')} | {m2('c_cread_s')} | "
                       f"{m2('c_decode_s')} |")
    sc = [r for r in rows if is_scaling(r)]
    if sc:
        out.append("\nCommit cost against rank count (1000 arrays x 4 KiB per rank, no codec, "
                   "/dev/shm; ranks beyond 2 oversubscribed):\n")
        out.append("| ranks | define 1000 arrays s | commit s median (min-max) | of which gather "
                   "| footer | sync | other | chunks | metadata bytes (file - raw) | load |")
        out.append("|---|---|---|---|---|---|---|---|---|---|")

        def med(r, k):
            return f"{r[k]['median']:.4f}" if k in r else "-"

        for r in sorted(sc, key=lambda r: r["np"]):
            meta = r["stored_bytes"] - r["raw_bytes"]
            out.append(f"| {r['np']} | {r['w_create_s']['median']:.3f} | {fmt_t(r['w_commit_s'])} | "
                       f"{med(r, 's_meta_gather_s')} | {med(r, 's_footer_s')} | "
                       f"{med(r, 's_sync_s')} | {med(r, 's_other_s')} | "
                       f"{r['narrays'] * r['np']} | {meta:.0f} | "
                       f"{r['load_min']:.1f}-{r['load_max']:.1f} |")
    targets(rows, out)
    text = "\n".join(out) + "\n"
    if path:
        with open(path, "w") as fp:
            fp.write(text)
    else:
        sys.stdout.write(text)


def cli():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("jsonl")
    ap.add_argument("--png")
    ap.add_argument("--markdown")
    a = ap.parse_args()
    rows = load(a.jsonl)
    if a.png:
        plot(rows, a.png)
    markdown(rows, a.markdown)


if __name__ == "__main__":
    cli()
