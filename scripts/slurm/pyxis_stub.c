/*
 * A SPANK plugin that registers pyxis's srun/sbatch option names and does nothing with them, so a
 * plain Slurm test cluster accepts the container options dyncc writes. Test-only: it runs no container.
 */
#include <stddef.h>
#include <slurm/spank.h>

SPANK_PLUGIN(pyxis_stub, 1);

static int ignore(int val, const char *optarg, int remote) { (void)val; (void)optarg; (void)remote; return 0; }

#define WITH_ARG(name) { name, "arg", "pyxis option (accepted, ignored by the test stub)", 1, 0, ignore }
#define FLAG(name) { name, NULL, "pyxis flag (accepted, ignored by the test stub)", 0, 0, ignore }

struct spank_option spank_options[] = {
    WITH_ARG("container-image"),
    WITH_ARG("container-mounts"),
    WITH_ARG("container-workdir"),
    WITH_ARG("container-name"),
    WITH_ARG("container-save"),
    WITH_ARG("container-env"),
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

int slurm_spank_init(spank_t sp, int ac, char **av) { (void)sp; (void)ac; (void)av; return 0; }
