/*-------------------------------------------------------------------------
 * registry.h
 *		Shared by the three files that read the registry: extension.c (is
 *		it here, which version, when it went stale, the guard's lock),
 *		probe.c (primary-key probes and their cache) and registry.c (SPI
 *		reads and writes).
 *-------------------------------------------------------------------------
 */
#ifndef ROLLGUARD_REGISTRY_H
#define ROLLGUARD_REGISTRY_H

#include "rollguard.h"

#include "storage/lockdefs.h"
#include "utils/snapshot.h"
#include "executor/spi.h"

/* The registry tables the guard probes (and whose changes reset caches). */
typedef enum RegistryTable
{
	RT_DEPLOYMENT_STATE,
	RT_CONTRACT,
	RT_LIVE_VERSION,
	RT_LIVE_COLUMN,
	RT_LIVE_RELATION,
	RT_COUNT
} RegistryTable;

/* extension.c */
extern const char *const rg_registry_table_names[RT_COUNT];
extern uint64 rg_registry_epoch;
extern Oid	rg_registry_table(RegistryTable which);
extern Oid	rg_registry_owner(void);
extern Oid	rg_registry_lock_relation(LOCKMODE *mode);
extern bool rg_probe_cache_allowed(void);

/* probe.c */
extern Snapshot rg_probe_begin(void);
extern void rg_probe_end(Snapshot snapshot);
extern bool rg_probe(Snapshot snapshot, RegistryTable table, int nkeys,
					 const char **keys, int nvalues, int32 *values);

/* a plan kept for the backend's life (generic: the registry's shape does not change) */
extern SPIPlanPtr rg_prepare_saved(const char *sql, int nargs, Oid *argtypes);

#endif							/* ROLLGUARD_REGISTRY_H */
