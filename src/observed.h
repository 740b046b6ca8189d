/*-------------------------------------------------------------------------
 * observed.h
 *		Between observed usage's recording (observed.c) and its store
 *		(observed_store.c).
 *-------------------------------------------------------------------------
 */
#ifndef ROLLGUARD_OBSERVED_H
#define ROLLGUARD_OBSERVED_H

#include "rollguard.h"

/* What a use is recorded under (zero-padded: it is hashed as bytes). */
typedef struct ObservedKey
{
	Oid			dbid;
	NameData	nspname;
	NameData	relname;
	NameData	attname;
	char		version[RG_LABEL_MAX + 1];
} ObservedKey;

extern void rg_observed_make_key(ObservedKey *key, Oid dbid, const char *nspname,
								 const char *relname, const char *attname,
								 const char *version);
extern void rg_observed_record_use(const ObservedKey *key, bool reads, bool writes,
								   TimestampTz now);
extern bool rg_observed_store_ready(void);
extern uint32 rg_observed_clear_generation(void);
extern void rg_observed_store_define_settings(void);
extern void rg_observed_store_install(void);

#endif							/* ROLLGUARD_OBSERVED_H */
