/*-------------------------------------------------------------------------
 * observed.c
 *		Observed usage, recording: the columns that tagged sessions'
 *		statements read or write are recorded per version (in the store,
 *		observed_store.c), so that raw SQL a manifest missed still counts
 *		as a use.
 *
 * An ExecutorCheckPerms_hook sees every statement's relations and the
 * columns it selects, inserts and updates (after the permission checks
 * passed).  In a tagged session (rg_session_tags()) whose role may provide
 * evidence (rg_session_trusted(): rollguard_tag), each column is
 * recorded under each version the session is tagged with, by name:
 * (database, schema, relation, column, version) -> reads, writes,
 * first_seen, last_seen.
 *
 * Cost: a per-backend cache of (relation, column) remembers what this
 * backend already recorded; the shared table is touched only on the first
 * use of a column in a backend (per tag and after invalidations), to
 * refresh last_seen at most once a minute, and after clear_observed().
 * Statements of untagged sessions cost one strcmp (application_name).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"
#include "postgres.h"

#include <sys/stat.h>
#include <unistd.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "commands/extension.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "port/pg_crc32c.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "observed.h"

/* A backend refreshes an entry's last_seen at most this often. */
#define REFRESH_INTERVAL_MS (60 * 1000)

/* rollguard.observe */
static bool rg_observe = true;

static ExecutorCheckPerms_hook_type prev_ExecutorCheckPerms_hook = NULL;

/*
 * The per-backend cache.  local_generation is bumped by relcache and
 * pg_namespace invalidations and by a change of this session's tags;
 * entries of an older generation count as absent.
 */
/* One use of a relation by a statement, remembered for the fast path. */
typedef struct LocalUse
{
	uint32		generation;
	uint32		clear_generation;
	AclMode		perms;
	Bitmapset  *selected;		/* in local_cxt */
	Bitmapset  *inserted;
	Bitmapset  *updated;
	TimestampTz until;
} LocalUse;

typedef struct LocalRel
{
	Oid			relid;
	uint32		generation;
	bool		observed;		/* are uses of this relation recorded? */
	NameData	nspname;
	NameData	relname;

	/*
	 * The fast path: the last two uses of the relation (its columns and how
	 * they were used), all recorded, each with when the first of its
	 * columns is due a refresh.  A statement that uses the relation as one
	 * of them did (the same statement run again, most of the time; two,
	 * for a transaction that updates a table and then reads it back)
	 * before then, in the same generations, has nothing to record and
	 * skips the per-column lookups.  generation 0: none.
	 */
	LocalUse	uses[2];
	int			next_use;		/* the slot the next new use replaces */
} LocalRel;

typedef struct LocalColKey
{
	Oid			relid;
	int32		attnum;
} LocalColKey;

typedef struct LocalCol
{
	LocalColKey key;
	uint32		generation;
	uint32		clear_generation;
	bool		reads;			/* recorded by this backend so far */
	bool		writes;
	TimestampTz recorded_at;
} LocalCol;

/*
 * A statement that uses a relation but none of its columns (SELECT count(*),
 * DELETE without WHERE, SELECT ctid) is recorded with the empty column name,
 * under this attnum in the local cache (system columns are never cached).
 */
#define RELATION_ITSELF (-1)

#define LOCAL_CACHE_MAX 100000	/* entries, before the cache starts over */

static MemoryContext local_cxt = NULL;
static HTAB *local_rels = NULL;
static HTAB *local_cols = NULL;
static LocalRel *last_rel = NULL;	/* the entry found last (one probe saved) */
static uint32 local_generation = 1;
static uint32 seen_tags_generation = 0;
static uint32 extension_generation = 0;	/* when extension_here was asked */
static bool extension_here = false;

/* rollguard.observe, and the store's settings. */
void
rg_observed_define_settings(void)
{
	/*
	 * Anyone may turn it off for a session (PGC_USERSET): a session may drop
	 * its tags just as well, which stops recording too, so this gives the
	 * application role nothing it does not have.  Migration tools need it
	 * off (a data migration that reads the old column it copies is no use
	 * by the new version), and they rarely run as a superuser.
	 */
	DefineCustomBoolVariable("rollguard.observe",
							 "Records the columns that this session's statements use, if it is tagged.",
							 "Tagged sessions' uses count as uses by their version. Turn it off for migrations.",
							 &rg_observe,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	rg_observed_store_define_settings();
}


/*----------------------------------------------------------------------
 * Recording: the per-backend cache and the hook
 *----------------------------------------------------------------------
 */

static void
invalidate_local(Datum arg, Oid relid)
{
	local_generation++;
}

static void
invalidate_local_syscache(Datum arg, int cacheid, uint32 hashvalue)
{
	local_generation++;
}

static void
init_local_cache(void)
{
	HASHCTL		info;

	if (local_cxt == NULL)
	{
		local_cxt = AllocSetContextCreate(TopMemoryContext, "rollguard observed cache",
										  ALLOCSET_DEFAULT_SIZES);
		CacheRegisterRelcacheCallback(invalidate_local, (Datum) 0);
		CacheRegisterSyscacheCallback(NAMESPACEOID, invalidate_local_syscache, (Datum) 0);
	}
	else
		MemoryContextReset(local_cxt);

	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(Oid);
	info.entrysize = sizeof(LocalRel);
	info.hcxt = local_cxt;
	local_rels = hash_create("rollguard observed relations (local)", 64, &info,
							 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	last_rel = NULL;
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(LocalColKey);
	info.entrysize = sizeof(LocalCol);
	info.hcxt = local_cxt;
	local_cols = hash_create("rollguard observed columns (local)", 256, &info,
							 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/* Is the relation one whose uses are recorded?  Fills in its names. */
static bool
relation_is_observed(Oid relid, LocalRel *rel)
{
	char	   *nspname;
	char	   *relname;

	if (!rg_relation_is_guarded(relid, NULL))
		return false;
	nspname = get_namespace_name(get_rel_namespace(relid));
	relname = get_rel_name(relid);
	if (nspname == NULL || relname == NULL)
		return false;
	namestrcpy(&rel->nspname, nspname);
	namestrcpy(&rel->relname, relname);
	return true;
}

/*
 * Records the use of column attnum of rel (0: the whole row, that is every
 * column; RELATION_ITSELF: the relation, with no column) under every
 * version of tags.
 */
static void
record_column(LocalRel *rel, AttrNumber attnum, bool reads, bool writes,
			  const RgSessionTags *tags, TimestampTz now)
{
	ObservedKey key;

	if (attnum == RELATION_ITSELF)
	{
		for (int t = 0; t < tags->ntags; t++)
		{
			rg_observed_make_key(&key, MyDatabaseId, NameStr(rel->nspname), NameStr(rel->relname),
					 "", tags->version[t]);
			rg_observed_record_use(&key, reads, writes, now);
		}
	}
	else if (attnum == 0)
	{
		Relation	r = RelationIdGetRelation(rel->relid);

		if (r == NULL)
			return;
		for (int i = 0; i < RelationGetDescr(r)->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(RelationGetDescr(r), i);

			if (att->attisdropped)
				continue;
			for (int t = 0; t < tags->ntags; t++)
			{
				rg_observed_make_key(&key, MyDatabaseId, NameStr(rel->nspname), NameStr(rel->relname),
						 NameStr(att->attname), tags->version[t]);
				rg_observed_record_use(&key, reads, writes, now);
			}
		}
		RelationClose(r);
	}
	else
	{
		HeapTuple	tup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(rel->relid),
										  Int16GetDatum(attnum));
		Form_pg_attribute att;

		if (!HeapTupleIsValid(tup))
			return;
		att = (Form_pg_attribute) GETSTRUCT(tup);
		if (!att->attisdropped)
		{
			for (int t = 0; t < tags->ntags; t++)
			{
				rg_observed_make_key(&key, MyDatabaseId, NameStr(rel->nspname), NameStr(rel->relname),
						 NameStr(att->attname), tags->version[t]);
				rg_observed_record_use(&key, reads, writes, now);
			}
		}
		ReleaseSysCache(tup);
	}
}

/* Does this statement use the relation as use did, with nothing due? */
static inline bool
same_use(const LocalUse *use, const RgPermInfo *perm, uint32 clear_generation,
		 TimestampTz now)
{
	return use->generation == local_generation &&
		use->clear_generation == clear_generation &&
		now < use->until && use->perms == perm->requiredPerms &&
		bms_equal(use->selected, perm->selectedCols) &&
		bms_equal(use->inserted, perm->insertedCols) &&
		bms_equal(use->updated, perm->updatedCols);
}

/*
 * One column of one statement: recorded unless this backend just did.
 * Lowers *oldest to when the column was last recorded.
 */
static void
observe_column(LocalRel *rel, AttrNumber attnum, bool reads, bool writes,
			   const RgSessionTags *tags, TimestampTz now, uint32 clear_generation,
			   TimestampTz *oldest)
{
	LocalColKey key;
	LocalCol   *col;
	bool		found;

	key.relid = rel->relid;
	key.attnum = attnum;
	col = hash_search(local_cols, &key, HASH_ENTER, &found);
	if (!found || col->generation != local_generation ||
		col->clear_generation != clear_generation)
	{
		col->generation = local_generation;
		col->clear_generation = clear_generation;
		col->reads = false;
		col->writes = false;
		col->recorded_at = 0;
	}
	else if ((!reads || col->reads) && (!writes || col->writes) &&
			 !TimestampDifferenceExceeds(col->recorded_at, now, REFRESH_INTERVAL_MS))
	{
		*oldest = Min(*oldest, col->recorded_at);
		return;
	}

	record_column(rel, attnum, reads, writes, tags, now);
	col->reads |= reads;
	col->writes |= writes;
	col->recorded_at = now;
	*oldest = Min(*oldest, now);
}

/*
 * Every column of a bitmap (offset by FirstLowInvalidHeapAttributeNumber);
 * false if it has none but system columns.
 */
static bool
observe_columns(LocalRel *rel, Bitmapset *cols, bool reads, bool writes,
				const RgSessionTags *tags, TimestampTz now, uint32 clear_generation,
				TimestampTz *oldest)
{
	int			i = -1;
	bool		any = false;

	while ((i = bms_next_member(cols, i)) >= 0)
	{
		AttrNumber	attnum = i + FirstLowInvalidHeapAttributeNumber;

		if (attnum < 0)			/* system columns */
			continue;
		observe_column(rel, attnum, reads, writes, tags, now, clear_generation, oldest);
		any = true;
	}
	return any;
}

static void
observe_statement(List *perminfos)
{
	const RgSessionTags *tags;
	TimestampTz now;
	uint32		clear_generation;
	ListCell   *lc;

	if (!rg_observe || !rg_observed_store_ready() || !IsTransactionState())
		return;
	tags = rg_session_tags();
	if (tags == NULL)
		return;

	if (local_cols == NULL || hash_get_num_entries(local_cols) > LOCAL_CACHE_MAX)
		init_local_cache();
	if (tags->generation != seen_tags_generation)
	{
		seen_tags_generation = tags->generation;
		local_generation++;
	}

	/*
	 * In a database without the extension, or with one older than 1.3 (no
	 * rollguard.observed to show the uses, nor clear_observed()), nothing
	 * is recorded.
	 */
	if (extension_generation != local_generation)
	{
		extension_here = rg_extension_active() && rg_api_version() >= RG_API_1_3;
		extension_generation = local_generation;
	}
	if (!extension_here)
		return;
	/* a tag from a role without rollguard_tag is no evidence */
	if (!rg_session_trusted())
		return;

	now = GetCurrentStatementStartTimestamp();
	clear_generation = rg_observed_clear_generation();
	foreach(lc, perminfos)
	{
		RgPermInfo *perm = (RgPermInfo *) lfirst(lc);
		LocalRel   *rel;
		bool		found;
		bool		any;
		TimestampTz oldest = PG_INT64_MAX;
		MemoryContext oldcxt;
		LocalUse   *use;

		/*
		 * Relations the statement names (and views' base relations, checked
		 * as the view's owner); not the partitions and children that
		 * inheritance adds, which have nothing to check.
		 */
		if (!RG_PERM_INFO_IS_RELATION(perm) || perm->requiredPerms == 0)
			continue;
		if (last_rel != NULL && last_rel->relid == perm->relid)
		{
			rel = last_rel;
			found = true;
		}
		else
			rel = hash_search(local_rels, &perm->relid, HASH_ENTER, &found);
		last_rel = rel;
		if (!found)
		{
			memset(rel->uses, 0, sizeof(rel->uses));
			rel->next_use = 0;
		}
		if (!found || rel->generation != local_generation)
		{
			rel->generation = local_generation;
			rel->observed = relation_is_observed(perm->relid, rel);
			rel->uses[0].generation = rel->uses[1].generation = 0;
		}
		if (!rel->observed)
			continue;
		/* a use as one of the last two, nothing due: nothing to do */
		if (same_use(&rel->uses[0], perm, clear_generation, now) ||
			same_use(&rel->uses[1], perm, clear_generation, now))
			continue;
		any = observe_columns(rel, perm->selectedCols, true, false, tags, now, clear_generation, &oldest);
		any |= observe_columns(rel, perm->insertedCols, false, true, tags, now, clear_generation, &oldest);
		any |= observe_columns(rel, perm->updatedCols, false, true, tags, now, clear_generation, &oldest);
		/*
		 * The relation itself: used without any of its columns (count(*),
		 * DELETE), or inserted into -- "writes" on the relation means it
		 * inserts rows (INSERT ... DEFAULT VALUES too), which the NOT NULL
		 * rules ask about.
		 */
		if (!any || (perm->requiredPerms & ACL_INSERT) != 0)
			observe_column(rel, RELATION_ITSELF,
						   !any && (perm->requiredPerms & ACL_SELECT) != 0,
						   (perm->requiredPerms & ACL_INSERT) != 0,
						   tags, now, clear_generation, &oldest);

		/* remember this use for the fast path, in place of the older one */
		use = &rel->uses[rel->next_use];
		rel->next_use = 1 - rel->next_use;
		oldcxt = MemoryContextSwitchTo(local_cxt);
		bms_free(use->selected);
		bms_free(use->inserted);
		bms_free(use->updated);
		use->selected = bms_copy(perm->selectedCols);
		use->inserted = bms_copy(perm->insertedCols);
		use->updated = bms_copy(perm->updatedCols);
		MemoryContextSwitchTo(oldcxt);
		use->perms = perm->requiredPerms;
		use->generation = local_generation;
		use->clear_generation = clear_generation;
		use->until = oldest == PG_INT64_MAX ? 0 :
			oldest + (TimestampTz) REFRESH_INTERVAL_MS * 1000;
	}
}

static bool
rg_executor_check_perms(EXECUTOR_CHECK_PERMS_PARAMS)
{
	if (prev_ExecutorCheckPerms_hook &&
		!prev_ExecutorCheckPerms_hook(EXECUTOR_CHECK_PERMS_ARGS))
		return false;
	rg_sessions_note_appname();
	/* EXPLAIN without ANALYZE checks permissions but reads nothing */
	if (!rg_explain_only)
		observe_statement(RG_PERM_INFOS);
	return true;
}

/* From _PG_init, when preloaded. */
void
rg_observed_install_hooks(void)
{
	prev_ExecutorCheckPerms_hook = ExecutorCheckPerms_hook;
	ExecutorCheckPerms_hook = rg_executor_check_perms;
	rg_observed_store_install();
}

