# Any results/<name>/... target whose <name> is not a benchmark of the config ends here, before any job,
# with a message that lists the benchmarks that exist.
rule unknown_benchmark:
    input:
        unknown_benchmark,
    output:
        "results/{name}/{anything}",
    log:
        "logs/unknown_benchmark/{name}/{anything}.log",
    wildcard_constraints:
        name="(?!(?:" + "|".join([*BENCHMARKS, *SEEDED]) + ")/)[^/]+",
        anything=".+",
    localrule: True
    conda:
        ENV
    shell:
        "false"
