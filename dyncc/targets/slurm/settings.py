"""The spec's ``slurm:`` section: settings of the Slurm target only (cheap to import)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import Field

from dyncc.spec.model import SectionModel

# Paths on the cluster's shared filesystem: absolute, plain characters (they are written into a bash script,
# double-quoted, and into pyxis's comma-separated --container-mounts).
SharedPath = Annotated[str, Field(pattern=r"^/[A-Za-z0-9._/-]*$", max_length=1024)]
# Site option lines are checked by the target (DYN560/DYN561) rather than by a pattern here, so that a
# smuggled newline or a managed option gets its own code and hint instead of a generic pattern error.
OptionLine = Annotated[str, Field(min_length=1, max_length=1024)]


# The long options of Slurm 22.05's sbatch and srun, the slurm-client dyncc is tested with, as getopt names
# them (`sbatch --a` answers "option '--a' is ambiguous; possibilities: '--account' '--acctg-freq' ...";
# tests/test_slurm_options.py reads them from the installed commands), and those pyxis (SPANK) adds to both.
# getopt takes any unambiguous prefix of one of them, so `--nod`/`--outp` must be read as Slurm reads them.
SBATCH_OPTIONS = frozenset(
    """
    account acctg-freq array batch bb bbf begin chdir cluster cluster-constraint clusters comment constraint
    container context contiguous core-spec cores-per-socket cpu-freq cpus-per-gpu cpus-per-task deadline
    delay-boot dependency distribution error exclude exclusive export export-file extra-node-info get-user-env
    gid gpu-bind gpu-freq gpus gpus-per-node gpus-per-socket gpus-per-task gres gres-flags help hint hold
    ignore-pbs input job-name kill-on-invalid-dep licenses mail-type mail-user mcs-label mem mem-bind
    mem-per-cpu mem-per-gpu mincpus network nice no-kill no-requeue nodefile nodelist nodes ntasks
    ntasks-per-core ntasks-per-gpu ntasks-per-node ntasks-per-socket ntasks-per-tres open-mode output overcommit
    oversubscribe parsable partition power prefer priority profile propagate qos quiet reboot requeue
    reservation signal sockets-per-node spread-job switches tasks-per-node test-only thread-spec
    threads-per-core time time-min tmp uid usage use-min-nodes verbose version wait wait-all-nodes wckey wrap
    """.split()
)
SRUN_OPTIONS = frozenset(
    """
    accel-bind account acctg-freq bb bbf bcast bcast-exclude begin chdir cluster cluster-constraint clusters
    comment compress constraint container context contiguous core-spec cores-per-socket cpu-bind cpu-freq
    cpu_bind cpus-per-gpu cpus-per-task deadline debugger-test delay-boot dependency disable-status distribution
    epilog error exact exclude exclusive export extra-node-info gid gpu-bind gpu-freq gpus gpus-per-node
    gpus-per-socket gpus-per-task gres gres-flags help het-group hint hold immediate input interactive job-name
    jobid kill-on-bad-exit label licenses mail-type mail-user mcs-label mem mem-bind mem-per-cpu mem-per-gpu
    mincpus mpi msg-timeout multi-prog network nice no-allocate no-kill nodefile nodelist nodes ntasks
    ntasks-per-core ntasks-per-gpu ntasks-per-node ntasks-per-socket ntasks-per-tres open-mode output overcommit
    overlap oversubscribe pack-group partition power prefer preserve-env priority profile prolog propagate pty
    qos quiet quit-on-interrupt reboot relative reservation resv-ports send-libs signal slurmd-debug
    sockets-per-node spread-job switches task-epilog task-prolog tasks-per-node test-only thread-spec threads
    threads-per-core time time-min tmp uid unbuffered usage use-min-nodes verbose version wait wckey whole x11
    """.split()
)
PYXIS_OPTIONS = frozenset(
    """
    container-entrypoint container-entrypoint-log container-env container-image container-mount-home
    container-mounts container-name container-readonly container-remap-root container-save container-workdir
    container-writable no-container-entrypoint no-container-mount-home no-container-remap-root
    """.split()
)


def managed_option(name: str, options: frozenset[str], managed: Mapping[str, str]) -> tuple[str, str] | None:
    """The option dyncc writes itself (a key of ``managed``) that a site's ``--name`` sets, and how to say
    so; None when it sets none. An exact option name is that option (getopt prefers it to longer ones it
    begins); any other prefix of a managed option is refused, whether Slurm reads it as that option (the
    only one it begins) or refuses it as ambiguous."""
    if name in managed:
        return name, f"--{name}"
    if name in options:
        return None
    begun = sorted(o for o in options | managed.keys() if o.startswith(name))
    hit = next((o for o in begun if o in managed), None)
    if hit is None:
        return None
    if len(begun) == 1:
        return hit, f"--{name}, an abbreviation of --{hit} (Slurm takes any unambiguous prefix of an option)"
    others = ", ".join(f"--{o}" for o in begun if o != hit)
    return hit, f"--{name}, which may abbreviate --{hit} (or {others}: Slurm refuses the ambiguity)"


class SlurmSettings(SectionModel):
    """The Slurm target: one sbatch job running the frontend and every worker as srun steps."""

    partition: str | None = Field(
        None, pattern=r"^[A-Za-z0-9._,-]+$", max_length=128, description="#SBATCH --partition; default: the site's."
    )
    account: str | None = Field(
        None, pattern=r"^[A-Za-z0-9._-]+$", max_length=128, description="#SBATCH --account charged for the job."
    )
    qos: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]+$", max_length=128, description="#SBATCH --qos.")
    reservation: str | None = Field(
        None, pattern=r"^[A-Za-z0-9._,-]+$", max_length=128, description="#SBATCH --reservation."
    )
    constraint: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9._&|\[\]()*:,!-]+$",
        max_length=512,
        description="#SBATCH --constraint: node features, with Slurm's &, |, [ ], counts (*N).",
    )
    time: str = Field(
        "04:00:00",
        pattern=r"^(\d+-)?\d{1,2}(:\d{2}){0,2}$",
        description="#SBATCH --time: the job's wall-clock limit, [days-]hours:minutes:seconds.",
    )
    gpu_request: Literal["gres", "gpus-per-node"] = Field(
        "gres", description="How #SBATCH asks for GPUs; some clusters reject --gpus-per-node."
    )
    exclusive: bool = Field(True, description="#SBATCH --exclusive: no other job shares the nodes.")
    extra_sbatch: list[OptionLine] = Field(
        default_factory=list,
        max_length=64,
        description="Further #SBATCH options, one option per item (`--mail-type=END`): each must start with "
        "`--`, be one line of plain characters (DYN560) and not set an option dyncc writes itself (DYN561).",
    )
    srun_options: list[OptionLine] = Field(
        default_factory=list,
        max_length=64,
        description="Further srun options for every step the job starts (`--cpu-bind=none`), checked like "
        "extra_sbatch (DYN560, DYN561).",
    )
    cpus_per_task: int | None = Field(
        None, ge=1, le=4096, description="srun --cpus-per-task of each worker rank (default: Slurm's, often 1)."
    )
    mem_per_task: str | None = Field(
        None,
        pattern=r"^[1-9][0-9]{0,8}[KMGT]?$",
        description="Memory of each worker rank, in Slurm's units (`64G`); steps ask for it per node (--mem).",
    )
    setup_script: SharedPath | None = Field(
        None,
        description="A bash file on the shared filesystem sourced by every step on every node before its "
        "command (modules, site environment).",
    )
    env_files: list[SharedPath] = Field(
        default_factory=list,
        max_length=16,
        description="Files of KEY=value lines on the shared filesystem, exported in every step before its command.",
    )
    container_image: str | None = Field(
        None,
        pattern=r"^/[A-Za-z0-9._/-]*\.sqsh$",
        max_length=1024,
        description="A squashfs image (`enroot import` output, *.sqsh) used instead of the spec's `image`.",
    )
    container_name: bool = Field(
        True,
        description="Import the container once per node (a first step with pyxis --container-name) and start "
        "every step from that import, instead of importing the image in each step.",
    )
    model_cache_dir: SharedPath | None = Field(
        None,
        description="HF_HOME on the shared filesystem: the model is downloaded there once per job, before any "
        "worker starts, and workers serve from it (default: hf-home in the submit directory).",
    )
    discovery: Literal["file", "etcd"] = Field(
        "file",
        description="file: Dynamo's file discovery on the shared submit directory; etcd: started on the head node.",
    )
    http_port: int = Field(
        8000, ge=1, le=65535, description="Frontend HTTP port on the head node (not a worker's system port: DYN402)."
    )
    system_port_base: int = Field(
        8081,
        ge=1,
        le=65535,
        description="First worker's system (health) port; one port per worker after it, all within Dynamo's range "
        "(DYN402).",
    )
    mpi: Literal["pmix", "pmi2", "none"] = Field(
        "pmix", description="srun --mpi of multi-rank workers: the PMI the site's Slurm and container support."
    )
    container_mounts: list[Annotated[str, Field(pattern=r"^/[A-Za-z0-9._/-]*(:/[A-Za-z0-9._/-]*)?(:(ro|rw))?$")]] = (
        Field(
            default_factory=list,
            description="Further pyxis --container-mounts, `/host[:/container][:ro|rw]`, in every step.",
        )
    )
    ready_timeout_s: int = Field(
        1800,
        ge=1,
        le=86_400,
        description="Seconds the job waits for the deployment to be ready (DYNCC_READY_TIMEOUT overrides it).",
    )
