/* Registers fix style `plumed` (FixFfptPlumed) with a LAMMPS that has the PLUGIN package. */
#include "fix_ffpt_plumed.h"

#include "lammps.h"

#include "../lammpsplugin_abi.h"

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
