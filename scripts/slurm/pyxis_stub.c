/*
 * A SPANK plugin that registers pyxis's srun/sbatch option names, so a plain Slurm test cluster accepts the
 * container options dyncc writes. Test-only: it runs no container. It does mimic what pyxis does with an
 * image and a container name, and records it, one line per step and node, in RECORDS/<job>.log (RECORDS:
 * the plugin's `records=DIR` argument in plugstack.conf; "import" when a step would import the image, "reuse"
 * when it starts from the container a step before it created on that node with --container-name), so tests
 * can count imports per node. A name with no image and no earlier import fails the step, as with pyxis. Each
 * line also names the step (the DYNCC_STEP its environment carries) and its --container-mounts, so tests can
 * tell which step ran in which container with which mounts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>
#include <slurm/spank.h>

SPANK_PLUGIN(pyxis_stub, 1);

enum { OPT_OTHER, OPT_IMAGE, OPT_NAME, OPT_MOUNTS };

static char image[1024];
static char name[256];
static char mounts[4096];
static char record_dir[512];  /* empty: record nothing */

static int remember(int val, const char *optarg, int remote) {
    (void)remote;
    if (val == OPT_IMAGE && optarg) snprintf(image, sizeof image, "%s", optarg);
    if (val == OPT_NAME && optarg) snprintf(name, sizeof name, "%s", optarg);
    if (val == OPT_MOUNTS && optarg) snprintf(mounts, sizeof mounts, "%s", optarg);
    return 0;
}

#define WITH_ARG(opt, val) { opt, "arg", "pyxis option (recorded by the test stub)", 1, val, remember }
#define FLAG(opt) { opt, NULL, "pyxis flag (accepted, ignored by the test stub)", 0, OPT_OTHER, remember }

struct spank_option spank_options[] = {
    WITH_ARG("container-image", OPT_IMAGE),
    WITH_ARG("container-mounts", OPT_MOUNTS),
    WITH_ARG("container-workdir", OPT_OTHER),
    WITH_ARG("container-name", OPT_NAME),
    WITH_ARG("container-save", OPT_OTHER),
    WITH_ARG("container-env", OPT_OTHER),
    FLAG("container-mount-home"),
    FLAG("no-container-mount-home"),
    FLAG("container-remap-root"),
    FLAG("no-container-remap-root"),
    FLAG("container-entrypoint"),
    FLAG("no-container-entrypoint"),
    FLAG("container-writable"),
    FLAG("container-readonly"),
    SPANK_OPTIONS_TABLE_END
};

int slurm_spank_init(spank_t sp, int ac, char **av) {
    (void)sp;
    for (int i = 0; i < ac; i++)
        if (strncmp(av[i], "records=", 8) == 0) snprintf(record_dir, sizeof record_dir, "%s", av[i] + 8);
    return 0;
}

static void record(unsigned job, unsigned step, const char *node, const char *action, const char *step_name) {
    char path[768];
    if (!record_dir[0]) return;
    mkdir(record_dir, 0755);
    snprintf(path, sizeof path, "%s/%u.log", record_dir, job);
    FILE *f = fopen(path, "a");
    if (!f) return;
    fprintf(f, "job=%u step=%u node=%s action=%s image=%s name=%s step_name=%s mounts=%s\n", job, step, node, action,
            image, name, step_name, mounts);
    fclose(f);
}

/* Once per step and node (local task 0), where the task's environment names the node. */
int slurm_spank_task_init(spank_t sp, int ac, char **av) {
    (void)ac; (void)av;
    int task = -1;
    uint32_t job = 0, step = 0;
    char node[128] = "?";
    char step_name[256] = "?";
    if (!record_dir[0] || (!image[0] && !name[0])) return 0;
    if (spank_get_item(sp, S_TASK_ID, &task) != ESPANK_SUCCESS || task != 0) return 0;
    spank_get_item(sp, S_JOB_ID, &job);
    spank_get_item(sp, S_JOB_STEPID, &step);
    spank_getenv(sp, "SLURMD_NODENAME", node, sizeof node);
    spank_getenv(sp, "DYNCC_STEP", step_name, sizeof step_name);
    if (!name[0]) { record(job, step, node, "import", step_name); return 0; }
    char marker[1024];
    mkdir(record_dir, 0755);
    snprintf(marker, sizeof marker, "%s/%u-%s-%s", record_dir, job, node, name);
    if (access(marker, F_OK) == 0) { record(job, step, node, "reuse", step_name); return 0; }
    if (!image[0]) { record(job, step, node, "missing", step_name); slurm_error("pyxis stub: no container %s", name); return -1; }
    int fd = open(marker, O_CREAT | O_WRONLY, 0644);
    if (fd >= 0) close(fd);
    record(job, step, node, "import", step_name);
    return 0;
}
