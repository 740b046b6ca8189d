/*-------------------------------------------------------------------------
 * probe.c
 *		The guard's fast reads of the registry: primary-key probes of the
 *		counters of live use and of the contracts, from C (no SPI), and
 *		what a backend keeps of their answers between checks.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_index.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "compat.h"
#include "registry.h"

/*
 * What the guard's probes of the registry found (see rg_probe()), kept from
 * one check to the next while the registry does not change.  From 1.4,
 * every statement that writes to a table named in RegistryTable has a
 * trigger send a relcache invalidation of it (rollguard._registry_changed):
 * like a catalog change, delivered to every backend when the writing
 * transaction commits, before it releases its locks, and never if it
 * aborts (PREPARE TRANSACTION keeps it for COMMIT PREPARED).  That resets
 * this cache, as it resets ext_cache.  probe_cache_epoch counts the
 * resets, so that a probe whose snapshot predates one does not store its
 * answer.
 */
static HTAB *probe_cache = NULL;
static MemoryContext probe_cache_cxt = NULL;
static uint64 probe_cache_epoch = 0;	/* rg_registry_epoch it is good for */

/* at most this many answers are kept; then the cache starts afresh */
#define PROBE_CACHE_MAX		8192
/* table, then each key as its length and bytes; longer keys are not kept */
#define PROBE_KEY_LEN		(4 * NAMEDATALEN)

typedef struct ProbeKey
{
	char		bytes[PROBE_KEY_LEN];
} ProbeKey;

typedef struct ProbeAnswer
{
	ProbeKey	key;
	bool		found;
	int32		values[3];
} ProbeAnswer;

/* Forgets what was kept, if the registry changed since it was. */
static void
probe_cache_check(void)
{
	if (probe_cache_epoch == rg_registry_epoch)
		return;
	probe_cache_epoch = rg_registry_epoch;
	if (probe_cache != NULL)
	{
		MemoryContextReset(probe_cache_cxt);
		probe_cache = NULL;
	}
}

/*
 * One snapshot for all of a check's probes: the latest committed state of
 * the registry.  Answers are taken from and kept in probe_cache only while
 * this transaction holds the registry lock (rg_lock_registry()): then no
 * deploy step, registration or other change that takes rollguard's lock
 * (rollguard._lock_live()) can commit, and any that committed before sent
 * its invalidation before it let its lock go.  Changes that do not take
 * it (a superuser's edits with session_replication_role = replica, say)
 * can commit while this transaction holds its lock, which it took in an
 * earlier statement: the invalidations that arrived since are read here,
 * not only when a lock is taken.
 */
static bool probe_cache_usable = false;
static uint64 probe_snapshot_epoch = 0;

Snapshot
rg_probe_begin(void)
{
	probe_cache_usable = false;
	if (rg_probe_cache_allowed())
	{
		LOCKTAG		tag;
		LOCKMODE	mode;

		SET_LOCKTAG_RELATION(tag, MyDatabaseId, rg_registry_lock_relation(&mode));
		probe_cache_usable = LOCK_HELD_BY_ME(&tag, mode);
		if (probe_cache_usable)
			AcceptInvalidationMessages();
	}
	/* a snapshot that sees every change whose invalidation was read */
	probe_snapshot_epoch = rg_registry_epoch;
	return RegisterSnapshot(GetLatestSnapshot());
}

void
rg_probe_end(Snapshot snapshot)
{
	UnregisterSnapshot(snapshot);
	probe_cache_usable = false;
}

/*
 * An index of the registry table whose first nkeys key columns are its
 * first nkeys columns (heap attribute numbers 1..nkeys), not partial: the
 * primary key where it does (the counters), else another (the contract's
 * primary key leads with the version; contract_column_idx with the names).
 */
static bool
index_leads_with(Oid indexid, int nkeys)
{
	HeapTuple	tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(indexid));
	Form_pg_index idx;
	bool		ok;

	if (!HeapTupleIsValid(tup))
		return false;
	idx = (Form_pg_index) GETSTRUCT(tup);
	ok = idx->indnkeyatts >= nkeys && heap_attisnull(tup, Anum_pg_index_indpred, NULL);
	for (int i = 0; ok && i < nkeys; i++)
		ok = idx->indkey.values[i] == i + 1;
	ReleaseSysCache(tup);
	return ok;
}

static Oid
probe_index_for(Relation rel, int nkeys)
{
	Oid			pk = RelationGetPrimaryKeyIndex(rel);
	List	   *indexes;
	ListCell   *lc;
	Oid			found = InvalidOid;

	if (OidIsValid(pk) && index_leads_with(pk, nkeys))
		return pk;
	indexes = RelationGetIndexList(rel);
	foreach(lc, indexes)
	{
		if (index_leads_with(lfirst_oid(lc), nkeys))
		{
			found = lfirst_oid(lc);
			break;
		}
	}
	list_free(indexes);
	return found;
}

/*
 * Looks up the first row of the registry table whose leading key columns
 * (text, heap attribute numbers 1..nkeys) equal keys, through an index that
 * leads with them (probe_index_for()), as of snapshot (the latest committed state: the caller's
 * registered GetLatestSnapshot()); nkeys 0: any row.  Fills
 * values[0..nvalues-1] with the row's integer columns nkeys+1.. (if it
 * found one).  An index probe from C: no SPI, no planner, no executor --
 * the guard's common case costs a few microseconds.
 */
static bool
probe_index(Snapshot snapshot, RegistryTable table, int nkeys, const char **keys,
	  int nvalues, int32 *values)
{
	Oid			relid = rg_registry_table(table);
	Oid			indexid;
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData skey[3];
	HeapTuple	tup;
	bool		found;

	if (!OidIsValid(relid))
		elog(ERROR, "rollguard: registry table rollguard.%s is missing",
			 rg_registry_table_names[table]);
	rel = table_open(relid, AccessShareLock);
	indexid = probe_index_for(rel, nkeys);
	if (!OidIsValid(indexid))
		elog(ERROR, "rollguard: registry table rollguard.%s has no index on its first %d columns",
			 rg_registry_table_names[table], nkeys);
	for (int i = 0; i < nkeys; i++)
		ScanKeyInit(&skey[i], i + 1, BTEqualStrategyNumber, F_TEXTEQ,
					PointerGetDatum(cstring_to_text(keys[i])));
	scan = systable_beginscan(rel, indexid, true, snapshot, nkeys, skey);
	tup = systable_getnext(scan);
	found = HeapTupleIsValid(tup);
	for (int i = 0; found && i < nvalues; i++)
	{
		bool		isnull;

		values[i] = DatumGetInt32(heap_getattr(tup, nkeys + 1 + i,
											   RelationGetDescr(rel), &isnull));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * The key of a probe in probe_cache: false if it is too long to keep.
 */
static bool
probe_key(ProbeKey *key, RegistryTable table, int nkeys, const char **keys)
{
	int			off = 0;

	memset(key, 0, sizeof(ProbeKey));
	key->bytes[off++] = (char) table;
	key->bytes[off++] = (char) nkeys;
	for (int i = 0; i < nkeys; i++)
	{
		size_t		len = strlen(keys[i]);
		uint16		len16 = (uint16) len;

		if (off + sizeof(uint16) + len > PROBE_KEY_LEN)
			return false;
		memcpy(key->bytes + off, &len16, sizeof(uint16));
		off += sizeof(uint16);
		memcpy(key->bytes + off, keys[i], len);
		off += len;
	}
	return true;
}

/*
 * probe_cache's hash: of the key's bytes in use (the rest are zeros), not
 * of all PROBE_KEY_LEN of them.
 */
static uint32
probe_key_hash(const void *key, Size keysize)
{
	const char *bytes = ((const ProbeKey *) key)->bytes;
	int			nkeys = (unsigned char) bytes[1];
	Size		off = 2;

	for (int i = 0; i < nkeys; i++)
	{
		uint16		len16;

		memcpy(&len16, bytes + off, sizeof(uint16));
		off += sizeof(uint16) + len16;
	}
	Assert(off <= keysize);
	return hash_bytes((const unsigned char *) bytes, (int) off);
}

/*
 * probe_index(), answered from probe_cache where it can be: a check of a
 * column the registry has not changed for since the last check of it
 * costs a hash lookup instead of an index scan.
 */
bool
rg_probe(Snapshot snapshot, RegistryTable table, int nkeys, const char **keys,
		 int nvalues, int32 *values)
{
	ProbeKey	key;
	ProbeAnswer *answer;
	bool		found;
	int32		all[3] = {0, 0, 0};

	Assert(nvalues <= 3);
	if (!probe_cache_usable || !probe_key(&key, table, nkeys, keys))
		return probe_index(snapshot, table, nkeys, keys, nvalues, values);
	probe_cache_check();

	if (probe_cache != NULL)
	{
		answer = hash_search(probe_cache, &key, HASH_FIND, NULL);
		if (answer != NULL)
		{
			memcpy(values, answer->values, sizeof(int32) * nvalues);
			return answer->found;
		}
	}

	found = probe_index(snapshot, table, nkeys, keys, nvalues, all);
	memcpy(values, all, sizeof(int32) * nvalues);

	/* not if the registry changed since the snapshot was taken */
	probe_cache_check();
	if (rg_registry_epoch != probe_snapshot_epoch)
		return found;
	if (probe_cache == NULL || hash_get_num_entries(probe_cache) >= PROBE_CACHE_MAX)
	{
		HASHCTL		ctl;

		if (probe_cache_cxt == NULL)
			probe_cache_cxt = AllocSetContextCreate(CacheMemoryContext,
													"rollguard probe cache",
													ALLOCSET_DEFAULT_SIZES);
		MemoryContextReset(probe_cache_cxt);
		ctl.keysize = sizeof(ProbeKey);
		ctl.entrysize = sizeof(ProbeAnswer);
		ctl.hash = probe_key_hash;
		ctl.hcxt = probe_cache_cxt;
		probe_cache = hash_create("rollguard probe cache", 256, &ctl,
								  HASH_ELEM | HASH_FUNCTION | HASH_CONTEXT);
	}
	answer = hash_search(probe_cache, &key, HASH_ENTER, NULL);
	answer->found = found;
	memcpy(answer->values, all, sizeof(all));
	return found;
}

/* Is the version live by the registry (some deployment runs it)? */
static bool
version_is_live(Snapshot snapshot, const char *version)
{
	return rg_probe(snapshot, RT_LIVE_VERSION, 1, &version, 0, NULL);
}

/*
 * The counters of live use for a column (attname may be NULL) and its
 * relation (false if they cannot be trusted; the caller has checked that
 * the installed extension has them: rg_counters_installed());
 * whether any of the tagged sessions' versions (sessions: a list of
 * RgSession) is not live by the registry; and whether any of
 * observed_versions (C strings) is live, by the registry or by a tagged
 * session.  Primary-key probes of rollguard.live_column, live_relation and
 * live_version: the cost does not depend on how many deployments or
 * versions the registry holds.
 */
bool
rg_fetch_counts(const char *nspname, const char *relname, const char *attname,
				List *sessions, List *observed_versions, RgLiveCounts *counts)
{
	const char *keys[3] = {nspname, relname, attname};
	int32		values[3];
	ListCell   *lc;
	Snapshot	snapshot;

	/* one state of the registry for every probe: the latest committed */
	snapshot = rg_probe_begin();

	/*
	 * Deployments but no live versions: the counters were not kept (a
	 * restore with --disable-triggers); do not trust them.
	 */
	if (!rg_probe(snapshot, RT_LIVE_VERSION, 0, NULL, 0, NULL) &&
		rg_probe(snapshot, RT_DEPLOYMENT_STATE, 0, NULL, 0, NULL))
	{
		rg_probe_end(snapshot);
		return false;
	}

	memset(counts, 0, sizeof(RgLiveCounts));
	if (attname && rg_probe(snapshot, RT_LIVE_COLUMN, 3, keys, 3, values))
	{
		counts->column_users = values[0];
		counts->column_nullable = values[1];
		counts->column_writers = values[2];
	}
	if (rg_probe(snapshot, RT_LIVE_RELATION, 2, keys, 2, values))
	{
		counts->relation_users = values[0];
		counts->relation_inserters = values[1];
	}
	foreach(lc, sessions)
	{
		RgSession  *s = lfirst(lc);

		if (!version_is_live(snapshot, s->version))
		{
			counts->other_sessions = true;
			break;
		}
	}
	foreach(lc, observed_versions)
	{
		const char *v = lfirst(lc);
		ListCell   *sc;

		foreach(sc, sessions)
			if (strcmp(((RgSession *) lfirst(sc))->version, v) == 0)
				counts->observed_live = true;
		if (!counts->observed_live && version_is_live(snapshot, v))
			counts->observed_live = true;
		if (counts->observed_live)
			break;
	}
	rg_probe_end(snapshot);
	return true;
}
