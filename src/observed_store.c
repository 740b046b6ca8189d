/*-------------------------------------------------------------------------
 * observed_store.c
 *		Observed usage, the store: the shared table of uses (observed.c
 *		records into it), its file, the worker that saves it, and what
 *		reads it: rg_observed_for() for the rules, and the SQL functions
 *		behind rollguard.observed, observed_stats and clear_observed().
 *
 * Shared memory: a dynahash of rollguard.max_observed entries, and a second
 * one counting the entries of each relation, so that a DDL check on a
 * relation nobody was seen using costs one probe (rg_observed_for()).  One
 * LWLock covers both; last_seen and the flags of an entry are updated under
 * the shared lock and the entry's spinlock.  When the table is full, new
 * uses are not recorded (nothing is evicted), counted, and logged once per
 * backend.  A version may fill at most rollguard.max_observed_per_version
 * entries of it, so that no one version (a tag made up by a role allowed to
 * tag) crowds out the others.  A use that could not be recorded is not
 * forgotten, though: the relation and version are noted in a third table,
 * of losses, and until an administrator forgets the loss
 * (rollguard.forget_unrecorded()) the rules count it as a use of every
 * column of the relation in every way: the guard fails closed.  Should the
 * table of losses fill up too, a single mark says that some losses are not
 * known, and every checked change in every database is refused until it
 * is forgotten.
 *
 * Persistence: a background worker writes the table to
 * pg_stat/rollguard_observed.dat every rollguard.observed_save_interval
 * seconds when it changed, and the postmaster writes it at shutdown; it is
 * read back when shared memory is set up (server start, and the
 * reinitialization after a crash).  A file that fails its checks is logged
 * and ignored.
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

/* The file, relative to the data directory, and its temporary twin. */
#define OBSERVED_FILE "pg_stat/rollguard_observed.dat"
#define OBSERVED_FILE_TMP OBSERVED_FILE ".tmp"
#define OBSERVED_FILE_MAGIC 0x52474f42	/* "RGOB" */
#define OBSERVED_FILE_FORMAT 2	/* 1 had no losses; it is read still */

typedef struct ObservedEntry
{
	ObservedKey key;
	slock_t		mutex;			/* protects the fields below under
								 * LW_SHARED */
	bool		reads;
	bool		writes;
	TimestampTz first_seen;
	TimestampTz last_seen;
} ObservedEntry;

/* How many entries a relation has. */
typedef struct RelCountKey
{
	Oid			dbid;
	NameData	nspname;
	NameData	relname;
} RelCountKey;

typedef struct RelCount
{
	RelCountKey key;
	int64		entries;
} RelCount;

/* How many entries a version has. */
typedef struct VersionCountKey
{
	Oid			dbid;
	char		version[RG_LABEL_MAX + 1];
} VersionCountKey;

typedef struct VersionCount
{
	VersionCountKey key;
	int64		entries;
} VersionCount;

/*
 * A loss: uses of a relation by a version that could not be recorded.  Key:
 * an ObservedKey with attname empty.  In the file, an ObservedRecord with
 * reads = by_version_limit, first_seen/last_seen = first_lost/last_lost;
 * the mark that losses went unnoted is a record with dbid 0.
 */
typedef struct LostEntry
{
	ObservedKey key;
	bool		by_version_limit;
	TimestampTz first_lost;
	TimestampTz last_lost;
} LostEntry;

typedef struct ObservedShared
{
	LWLock	   *lock;			/* all hash tables, lost_unnoted */
	int			max_entries;
	int			max_lost;
	TimestampTz lost_unnoted;	/* when losses could not be noted, 0 if
								 * never (since forgotten) */
	pg_atomic_uint64 changes;	/* bumped by every change, for the saver */
	pg_atomic_uint64 dropped;	/* uses not recorded: the table was full */
	pg_atomic_uint32 clear_generation;	/* bumped by clear_observed() */
	slock_t		mutex;			/* saved_at */
	TimestampTz saved_at;		/* last save, 0 if none since start */
} ObservedShared;

/* One entry in the file. */
typedef struct ObservedRecord
{
	ObservedKey key;
	bool		reads;
	bool		writes;
	TimestampTz first_seen;
	TimestampTz last_seen;
} ObservedRecord;

typedef struct ObservedFileHeader
{
	uint32		magic;
	uint32		format;
	uint32		record_size;
	uint32		unused;
	int64		count;
} ObservedFileHeader;			/* format 2: unused = losses, after the uses */

/* The settings. */
static int	rg_max_observed = 10000;
static int	rg_max_observed_per_version = 5000;
static int	rg_observed_save_interval = 10;

static ObservedShared *observed = NULL;
static HTAB *observed_hash = NULL;
static HTAB *relcount_hash = NULL;
static HTAB *versioncount_hash = NULL;
static HTAB *lost_hash = NULL;

/* the table of losses: a tenth of the uses' size, at least 100 */
#define MAX_LOST(max_entries) Max(100, (max_entries) / 10)

static bool overflow_logged = false;

PG_FUNCTION_INFO_V1(rollguard_observed);
PG_FUNCTION_INFO_V1(rollguard_observed_stats);
PG_FUNCTION_INFO_V1(rollguard_clear_observed);
PG_FUNCTION_INFO_V1(rollguard_unrecorded);
PG_FUNCTION_INFO_V1(rollguard_forget_unrecorded);

PGDLLEXPORT void rollguard_observed_saver(Datum main_arg);

/* rollguard.max_observed and rollguard.observed_save_interval */
void
rg_observed_store_define_settings(void)
{
/*
	 * Shared memory is sized when the server starts: a library loaded later
	 * (LOAD, a function call; then it observes nothing) may not define a
	 * PGC_POSTMASTER setting.
	 */
	if (!process_shared_preload_libraries_in_progress)
		return;
	DefineCustomIntVariable("rollguard.max_observed",
							"How many observed uses (column and version) shared memory holds.",
							"When it is full, new uses are not recorded.",
							&rg_max_observed,
							10000,
							100,
							INT_MAX / 2,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("rollguard.max_observed_per_version",
							"How many observed uses one version may have.",
							"Uses of a version beyond it are not recorded; changes to their relations are refused until the loss is forgotten.",
							&rg_max_observed_per_version,
							5000,
							10,
							INT_MAX / 2,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("rollguard.observed_save_interval",
							"How often observed uses are saved to disk, if they changed.",
							"A crash loses at most the uses first seen in this interval.",
							&rg_observed_save_interval,
							10,
							1,
							3600,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);
}

static Size
observed_shmem_size(void)
{
	Size		size = MAXALIGN(sizeof(ObservedShared));

	size = add_size(size, hash_estimate_size(rg_max_observed, sizeof(ObservedEntry)));
	size = add_size(size, hash_estimate_size(rg_max_observed, sizeof(RelCount)));
	size = add_size(size, hash_estimate_size(rg_max_observed, sizeof(VersionCount)));
	size = add_size(size, hash_estimate_size(MAX_LOST(rg_max_observed), sizeof(LostEntry)));
	return size;
}

/* The shared memory it needs (from the module's shmem_request_hook). */
void
rg_observed_shmem_request(void)
{
	RequestAddinShmemSpace(observed_shmem_size());
	RequestNamedLWLockTranche("rollguard observed", 1);
}

static void observed_shmem_shutdown(int code, Datum arg);
static void load_observed(void);

/* Sets it up (from the module's shmem_startup_hook). */
void
rg_observed_shmem_startup(void)
{
	bool		found;
	HASHCTL		info;

	observed = NULL;
	observed_hash = NULL;
	relcount_hash = NULL;
	versioncount_hash = NULL;
	lost_hash = NULL;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	observed = ShmemInitStruct("rollguard observed", sizeof(ObservedShared), &found);
	if (!found)
	{
		observed->lock = &(GetNamedLWLockTranche("rollguard observed"))->lock;
		observed->max_entries = rg_max_observed;
		observed->max_lost = MAX_LOST(rg_max_observed);
		observed->lost_unnoted = 0;
		pg_atomic_init_u64(&observed->changes, 0);
		pg_atomic_init_u64(&observed->dropped, 0);
		pg_atomic_init_u32(&observed->clear_generation, 0);
		SpinLockInit(&observed->mutex);
		observed->saved_at = 0;
	}
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(ObservedKey);
	info.entrysize = sizeof(ObservedEntry);
	observed_hash = ShmemInitHash("rollguard observed uses",
								  rg_max_observed, rg_max_observed,
								  &info, HASH_ELEM | HASH_BLOBS);
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(RelCountKey);
	info.entrysize = sizeof(RelCount);
	relcount_hash = ShmemInitHash("rollguard observed relations",
								  rg_max_observed, rg_max_observed,
								  &info, HASH_ELEM | HASH_BLOBS);
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(VersionCountKey);
	info.entrysize = sizeof(VersionCount);
	versioncount_hash = ShmemInitHash("rollguard observed versions",
									  rg_max_observed, rg_max_observed,
									  &info, HASH_ELEM | HASH_BLOBS);
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(ObservedKey);
	info.entrysize = sizeof(LostEntry);
	lost_hash = ShmemInitHash("rollguard observed losses",
							  MAX_LOST(rg_max_observed), MAX_LOST(rg_max_observed),
							  &info, HASH_ELEM | HASH_BLOBS);
	LWLockRelease(AddinShmemInitLock);

	/*
	 * In the postmaster (or a standalone backend): read the file, and write
	 * it at shutdown.  Not in backends of EXEC_BACKEND builds, which attach
	 * to what the postmaster set up.
	 */
	if (!IsUnderPostmaster)
	{
		on_shmem_exit(observed_shmem_shutdown, (Datum) 0);
		if (!found)
			load_observed();
	}
}

/*----------------------------------------------------------------------
 * The shared table
 *----------------------------------------------------------------------
 */

void
rg_observed_make_key(ObservedKey *key, Oid dbid, const char *nspname, const char *relname,
		 const char *attname, const char *version)
{
	memset(key, 0, sizeof(*key));
	key->dbid = dbid;
	strlcpy(NameStr(key->nspname), nspname, NAMEDATALEN);
	strlcpy(NameStr(key->relname), relname, NAMEDATALEN);
	strlcpy(NameStr(key->attname), attname, NAMEDATALEN);
	strlcpy(key->version, version, sizeof(key->version));
}

static void
make_relcount_key(RelCountKey *key, Oid dbid, const char *nspname, const char *relname)
{
	memset(key, 0, sizeof(*key));
	key->dbid = dbid;
	strlcpy(NameStr(key->nspname), nspname, NAMEDATALEN);
	strlcpy(NameStr(key->relname), relname, NAMEDATALEN);
}

typedef enum InsertResult
{
	INSERTED,
	TABLE_FULL,
	VERSION_FULL				/* the version has its share */
} InsertResult;

static void
make_versioncount_key(VersionCountKey *key, Oid dbid, const char *version)
{
	memset(key, 0, sizeof(*key));
	key->dbid = dbid;
	strlcpy(key->version, version, sizeof(key->version));
}

/*
 * Adds an entry, with the exclusive lock held, unless the table is full or
 * (version_limit) the version has rollguard.max_observed_per_version
 * entries.  The relation's and the version's counts go up with it.
 */
static InsertResult
insert_entry(const ObservedKey *key, bool reads, bool writes,
			 TimestampTz first_seen, TimestampTz last_seen, bool version_limit)
{
	ObservedEntry *entry;
	RelCount   *count;
	RelCountKey ckey;
	VersionCount *vcount;
	VersionCountKey vkey;
	bool		found;

	if (hash_get_num_entries(observed_hash) >= observed->max_entries)
		return TABLE_FULL;
	make_versioncount_key(&vkey, key->dbid, key->version);
	vcount = hash_search(versioncount_hash, &vkey, HASH_FIND, NULL);
	if (version_limit && vcount != NULL &&
		vcount->entries >= rg_max_observed_per_version &&
		hash_search(observed_hash, key, HASH_FIND, NULL) == NULL)
		return VERSION_FULL;
	entry = hash_search(observed_hash, key, HASH_ENTER_NULL, &found);
	if (entry == NULL)
		return TABLE_FULL;
	if (found)
	{
		/* (only when loading a file with duplicates) */
		entry->reads |= reads;
		entry->writes |= writes;
		entry->first_seen = Min(entry->first_seen, first_seen);
		entry->last_seen = Max(entry->last_seen, last_seen);
		return INSERTED;
	}
	memset(&ckey, 0, sizeof(ckey));
	ckey.dbid = key->dbid;
	ckey.nspname = key->nspname;
	ckey.relname = key->relname;
	count = hash_search(relcount_hash, &ckey, HASH_ENTER_NULL, &found);
	if (count == NULL)
	{
		hash_search(observed_hash, key, HASH_REMOVE, NULL);
		return TABLE_FULL;
	}
	if (!found)
		count->entries = 0;
	count->entries++;
	vcount = hash_search(versioncount_hash, &vkey, HASH_ENTER_NULL, &found);
	if (vcount != NULL)
	{
		if (!found)
			vcount->entries = 0;
		vcount->entries++;
	}
	SpinLockInit(&entry->mutex);
	entry->reads = reads;
	entry->writes = writes;
	entry->first_seen = first_seen;
	entry->last_seen = last_seen;
	return INSERTED;
}

/*
 * Notes a loss, with the exclusive lock held: uses of key's relation by
 * key's version that could not be recorded.  If the table of losses is
 * full too, that some losses are not known (lost_unnoted).
 */
static void
note_loss(const ObservedKey *use, bool by_version_limit, TimestampTz first_lost,
		  TimestampTz last_lost)
{
	ObservedKey key = *use;
	LostEntry  *lost;
	bool		found;

	memset(NameStr(key.attname), 0, NAMEDATALEN);
	lost = hash_get_num_entries(lost_hash) < observed->max_lost
		? hash_search(lost_hash, &key, HASH_ENTER_NULL, &found)
		: hash_search(lost_hash, &key, HASH_FIND, &found);
	if (lost == NULL)
	{
		if (observed->lost_unnoted == 0)
			observed->lost_unnoted = last_lost;
		return;
	}
	if (!found)
	{
		lost->by_version_limit = by_version_limit;
		lost->first_lost = first_lost;
		lost->last_lost = last_lost;
		return;
	}
	lost->by_version_limit &= by_version_limit;
	lost->first_lost = Min(lost->first_lost, first_lost);
	lost->last_lost = Max(lost->last_lost, last_lost);
}

/* Removes an entry, with the exclusive lock held. */
static void
remove_entry(ObservedEntry *entry)
{
	RelCountKey ckey;
	RelCount   *count;
	VersionCountKey vkey;
	VersionCount *vcount;

	make_versioncount_key(&vkey, entry->key.dbid, entry->key.version);
	vcount = hash_search(versioncount_hash, &vkey, HASH_FIND, NULL);
	if (vcount != NULL && --vcount->entries <= 0)
		hash_search(versioncount_hash, &vkey, HASH_REMOVE, NULL);

	memset(&ckey, 0, sizeof(ckey));
	ckey.dbid = entry->key.dbid;
	ckey.nspname = entry->key.nspname;
	ckey.relname = entry->key.relname;
	count = hash_search(relcount_hash, &ckey, HASH_FIND, NULL);
	if (count != NULL && --count->entries <= 0)
		hash_search(relcount_hash, &ckey, HASH_REMOVE, NULL);
	hash_search(observed_hash, &entry->key, HASH_REMOVE, NULL);
}

/* Records one use in the shared table. */
void
rg_observed_record_use(const ObservedKey *key, bool reads, bool writes, TimestampTz now)
{
	ObservedEntry *entry;
	InsertResult inserted;

	LWLockAcquire(observed->lock, LW_SHARED);
	entry = hash_search(observed_hash, key, HASH_FIND, NULL);
	if (entry != NULL)
	{
		SpinLockAcquire(&entry->mutex);
		entry->reads |= reads;
		entry->writes |= writes;
		if (now > entry->last_seen)
			entry->last_seen = now;
		SpinLockRelease(&entry->mutex);
		LWLockRelease(observed->lock);
		pg_atomic_fetch_add_u64(&observed->changes, 1);
		return;
	}
	LWLockRelease(observed->lock);

	LWLockAcquire(observed->lock, LW_EXCLUSIVE);
	entry = hash_search(observed_hash, key, HASH_FIND, NULL);
	if (entry != NULL)
	{
		entry->reads |= reads;
		entry->writes |= writes;
		if (now > entry->last_seen)
			entry->last_seen = now;
		inserted = INSERTED;
	}
	else
		inserted = insert_entry(key, reads, writes, now, now, true);
	if (inserted != INSERTED)
		note_loss(key, inserted == VERSION_FULL, now, now);
	LWLockRelease(observed->lock);

	/* a loss changes the table too: it is saved */
	pg_atomic_fetch_add_u64(&observed->changes, 1);
	if (inserted == INSERTED)
		return;
	pg_atomic_fetch_add_u64(&observed->dropped, 1);
	if (!overflow_logged)
	{
		overflow_logged = true;
		if (inserted == VERSION_FULL)
			ereport(LOG,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("rollguard cannot record more observed uses of version \"%s\": \"rollguard.max_observed_per_version\" is %d",
							key->version, rg_max_observed_per_version),
					 errdetail("The use of %s.%s.%s was not recorded; until the loss is forgotten, breaking changes to %s.%s are refused while the version is live.",
							   NameStr(key->nspname), NameStr(key->relname),
							   NameStr(key->attname), NameStr(key->nspname), NameStr(key->relname)),
					 errhint("Raise \"rollguard.max_observed_per_version\" and reload, then, once the version's sessions have run again, call rollguard.forget_unrecorded().")));
		else
			ereport(LOG,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("rollguard cannot record more observed uses: \"rollguard.max_observed\" is %d",
							observed->max_entries),
					 errdetail("The use of %s.%s.%s by version \"%s\" was not recorded; until the loss is forgotten, breaking changes to %s.%s are refused while the version is live.",
							   NameStr(key->nspname), NameStr(key->relname),
							   NameStr(key->attname), key->version,
							   NameStr(key->nspname), NameStr(key->relname)),
					 errhint("Raise \"rollguard.max_observed\" and restart the server, or remove uses that no longer matter with rollguard.clear_observed(); then call rollguard.forget_unrecorded().")));
	}
}

/*----------------------------------------------------------------------
 * The file
 *----------------------------------------------------------------------
 */

/*
 * Writes records to the file (temporary name, then renamed in place): count
 * uses, then nlost losses.
 */
static bool
write_observed_file(ObservedRecord *records, int64 count, uint32 nlost)
{
	FILE	   *file;
	ObservedFileHeader header;
	pg_crc32c	crc;

	file = AllocateFile(OBSERVED_FILE_TMP, PG_BINARY_W);
	if (file == NULL)
		goto error;
	memset(&header, 0, sizeof(header));
	header.magic = OBSERVED_FILE_MAGIC;
	header.format = OBSERVED_FILE_FORMAT;
	header.record_size = sizeof(ObservedRecord);
	header.count = count;
	header.unused = nlost;
	INIT_CRC32C(crc);
	COMP_CRC32C(crc, &header, sizeof(header));
	if (count + nlost > 0)
		COMP_CRC32C(crc, records, sizeof(ObservedRecord) * (count + nlost));
	FIN_CRC32C(crc);
	if (fwrite(&header, sizeof(header), 1, file) != 1 ||
		(count + nlost > 0 &&
		 fwrite(records, sizeof(ObservedRecord), count + nlost, file) != (size_t) (count + nlost)) ||
		fwrite(&crc, sizeof(crc), 1, file) != 1)
		goto error;
	if (FreeFile(file))
	{
		file = NULL;
		goto error;
	}
	file = NULL;
	if (durable_rename(OBSERVED_FILE_TMP, OBSERVED_FILE, LOG) != 0)
		goto error_logged;
	SpinLockAcquire(&observed->mutex);
	observed->saved_at = GetCurrentTimestamp();
	SpinLockRelease(&observed->mutex);
	return true;

error:
	ereport(LOG,
			(errcode_for_file_access(),
			 errmsg("could not write file \"%s\": %m", OBSERVED_FILE_TMP)));
error_logged:
	if (file)
		FreeFile(file);
	unlink(OBSERVED_FILE_TMP);
	return false;
}

/*
 * A copy of every entry, then of every loss (nlost of them).  lock: take
 * the LWLock (a background worker); the postmaster cannot, and needs not: it
 * runs this when every backend is gone.
 */
static ObservedRecord *
snapshot_records(bool lock, int64 *count, uint32 *nlost)
{
	ObservedRecord *records;
	HASH_SEQ_STATUS status;
	ObservedEntry *entry;
	LostEntry  *lost;
	int64		n = 0;
	int64		max;
	int64		maxlost;

	if (lock)
		LWLockAcquire(observed->lock, LW_SHARED);
	max = hash_get_num_entries(observed_hash);
	maxlost = hash_get_num_entries(lost_hash) + 1;
	records = palloc0(sizeof(ObservedRecord) * (max + maxlost));
	hash_seq_init(&status, observed_hash);
	while ((entry = hash_seq_search(&status)) != NULL)
	{
		ObservedRecord *r = &records[n];

		if (n >= max)
		{
			hash_seq_term(&status);
			break;
		}
		r->key = entry->key;
		SpinLockAcquire(&entry->mutex);
		r->reads = entry->reads;
		r->writes = entry->writes;
		r->first_seen = entry->first_seen;
		r->last_seen = entry->last_seen;
		SpinLockRelease(&entry->mutex);
		n++;
	}
	*count = n;
	hash_seq_init(&status, lost_hash);
	while ((lost = hash_seq_search(&status)) != NULL)
	{
		ObservedRecord *r = &records[n];

		if (n >= max + maxlost - 1)
		{
			hash_seq_term(&status);
			break;
		}
		r->key = lost->key;
		r->reads = lost->by_version_limit;
		r->first_seen = lost->first_lost;
		r->last_seen = lost->last_lost;
		n++;
	}
	if (observed->lost_unnoted != 0)
	{
		/* dbid 0: losses went unnoted */
		records[n].first_seen = records[n].last_seen = observed->lost_unnoted;
		n++;
	}
	if (lock)
		LWLockRelease(observed->lock);
	*nlost = (uint32) (n - *count);
	return records;
}

static void
save_observed(bool lock)
{
	int64		count;
	uint32		nlost;
	ObservedRecord *records = snapshot_records(lock, &count, &nlost);

	write_observed_file(records, count, nlost);
	pfree(records);
}

/* At postmaster exit: save, unless shared memory may be corrupt (a crash). */
static void
observed_shmem_shutdown(int code, Datum arg)
{
	if (code != 0 || observed == NULL || observed_hash == NULL)
		return;
	save_observed(false);
}

static bool
string_is_sound(const char *s, int size)
{
	return s[0] != '\0' && memchr(s, '\0', size) != NULL;
}

/*
 * Reads the file into the empty table (postmaster, at startup): all or
 * nothing.  Anything wrong with it is logged and the file ignored.
 */
static void
load_observed(void)
{
	FILE	   *file;
	ObservedFileHeader header;
	ObservedRecord record;
	pg_crc32c	crc;
	pg_crc32c	stored;
	const char *problem = NULL;
	int64		loaded = 0;
	int64		skipped = 0;
	int64		nlost = 0;
	struct stat st;

	file = AllocateFile(OBSERVED_FILE, PG_BINARY_R);
	if (file == NULL)
	{
		if (errno != ENOENT)
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg("could not read file \"%s\": %m", OBSERVED_FILE)));
		return;
	}

	/* First pass: the header, the size and the checksum. */
	if (fstat(fileno(file), &st) != 0 ||
		fread(&header, sizeof(header), 1, file) != 1)
		problem = "It is too short.";
	else if (header.magic != OBSERVED_FILE_MAGIC)
		problem = "It is not a file of observed uses.";
	else if ((header.format != OBSERVED_FILE_FORMAT && header.format != 1) ||
			 header.record_size != sizeof(ObservedRecord) ||
			 (header.format == 1 && header.unused != 0))
		problem = "It was written in another format.";
	else if (header.count < 0 ||
			 (uint64) st.st_size != sizeof(header) +
			 ((uint64) header.count + header.unused) * sizeof(ObservedRecord) + sizeof(pg_crc32c))
		problem = "Its size does not match the number of entries it announces.";
	else
	{
		nlost = header.unused;
		INIT_CRC32C(crc);
		COMP_CRC32C(crc, &header, sizeof(header));
		for (int64 i = 0; i < header.count + nlost && problem == NULL; i++)
		{
			if (fread(&record, sizeof(record), 1, file) != 1)
				problem = "It is too short.";
			else
			{
				COMP_CRC32C(crc, &record, sizeof(record));
				/* the mark that losses went unnoted has no names */
				if (i >= header.count && record.key.dbid == InvalidOid)
					continue;
				if (!string_is_sound(NameStr(record.key.nspname), NAMEDATALEN) ||
					!string_is_sound(NameStr(record.key.relname), NAMEDATALEN) ||
					memchr(NameStr(record.key.attname), '\0', NAMEDATALEN) == NULL ||
					!string_is_sound(record.key.version, sizeof(record.key.version)))
					problem = "An entry has a malformed name.";
			}
		}
		FIN_CRC32C(crc);
		if (problem == NULL &&
			(fread(&stored, sizeof(stored), 1, file) != 1 || !EQ_CRC32C(crc, stored)))
			problem = "Its checksum does not match its contents.";
	}
	if (problem != NULL)
	{
		ereport(LOG,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("ignoring corrupt file \"%s\"", OBSERVED_FILE),
				 errdetail("%s", problem),
				 errhint("Observed uses start empty; the file is replaced at the next save.")));
		FreeFile(file);
		return;
	}

	/* Second pass: the entries. */
	if (fseeko(file, sizeof(header), SEEK_SET) != 0)
	{
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("could not seek in file \"%s\": %m", OBSERVED_FILE)));
		FreeFile(file);
		return;
	}
	for (int64 i = 0; i < header.count; i++)
	{
		if (fread(&record, sizeof(record), 1, file) != 1)
			break;
		/* (no per-version limit: a use recorded once stays) */
		if (insert_entry(&record.key, record.reads, record.writes,
						 record.first_seen, record.last_seen, false) == INSERTED)
			loaded++;
		else
		{
			/* a use that does not fit is a loss */
			note_loss(&record.key, false, record.first_seen, record.last_seen);
			skipped++;
		}
	}
	for (int64 i = 0; i < nlost; i++)
	{
		if (fread(&record, sizeof(record), 1, file) != 1)
			break;
		if (record.key.dbid == InvalidOid)
			observed->lost_unnoted = record.last_seen;
		else
			note_loss(&record.key, record.reads, record.first_seen, record.last_seen);
	}
	FreeFile(file);
	if (skipped > 0)
	{
		pg_atomic_fetch_add_u64(&observed->dropped, skipped);
		ereport(LOG,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not load %lld of %lld observed uses from file \"%s\": \"rollguard.max_observed\" is %d",
						(long long) skipped, (long long) header.count, OBSERVED_FILE,
						observed->max_entries),
				 errdetail("Changes to their relations are refused while their versions are live, until the losses are forgotten (rollguard.unrecorded lists them)."),
				 errhint("Raise \"rollguard.max_observed\" and restart the server, then call rollguard.forget_unrecorded().")));
	}
}

/*----------------------------------------------------------------------
 * The background worker that saves
 *----------------------------------------------------------------------
 */

void
rollguard_observed_saver(Datum main_arg)
{
	uint64		saved_changes;
	uint64		saved_stamps = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();

	if (observed == NULL)
		proc_exit(0);
	saved_changes = pg_atomic_read_u64(&observed->changes);
	for (;;)
	{
		uint64		changes;

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 rg_observed_save_interval * 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		changes = pg_atomic_read_u64(&observed->changes);
		if (changes != saved_changes)
		{
			save_observed(true);
			saved_changes = changes;
		}
		/* and when deployments' tagged sessions were last connected */
		rg_liveness_save_if_changed(&saved_stamps);
		/* at shutdown, the postmaster saves last, once every backend is gone */
		if (ShutdownRequestPending)
			break;
	}
	proc_exit(0);
}

static void
register_saver(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = 10;
	strlcpy(worker.bgw_library_name, "rollguard", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "rollguard_observed_saver", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "rollguard observed saver", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "rollguard observed saver", BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

/* Is the shared table there (preloaded, set up)? */
bool
rg_observed_store_ready(void)
{
	return observed != NULL;
}

/* Bumped by every clear_observed(): a backend's cache is stale then. */
uint32
rg_observed_clear_generation(void)
{
	return pg_atomic_read_u32(&observed->clear_generation);
}

/* From _PG_init, when preloaded: the worker that saves the table. */
void
rg_observed_store_install(void)
{
	register_saver();
}

/*----------------------------------------------------------------------
 * The C API for the rules, and the SQL functions
 *----------------------------------------------------------------------
 */

/*
 * Observed uses of (nspname, relname, attname) in this database, in the
 * caller's memory context.  attname NULL: of every column of the relation,
 * and of the relation itself by statements that named none of its columns
 * (those have attname NULL in the result).  Then the losses of the
 * relation (unrecorded: uses that could not be recorded, by version).
 * One probe of the small per-relation table under LW_SHARED when nothing
 * was observed on the relation; else a scan of every entry under LW_SHARED.
 * If losses went unnoted (the table of losses was full), no change can be
 * judged: an error.
 */
List *
rg_observed_for(const char *nspname, const char *relname, const char *attname)
{
	RelCountKey ckey;
	RelCount   *count;
	HASH_SEQ_STATUS status;
	ObservedEntry *entry;
	ObservedRecord *found;
	int64		max;
	int64		n = 0;
	List	   *result = NIL;

	if (observed == NULL || nspname == NULL || relname == NULL)
		return NIL;
	make_relcount_key(&ckey, MyDatabaseId, nspname, relname);

	LWLockAcquire(observed->lock, LW_SHARED);
	if (observed->lost_unnoted != 0)
	{
		TimestampTz at = observed->lost_unnoted;

		LWLockRelease(observed->lock);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("cannot check changes to %s.%s: observed uses were lost, and of which relations is not known",
						nspname, relname),
				 errdetail("The table of observed uses and the table of its losses were both full at %s.",
						   timestamptz_to_str(at)),
				 errhint("Raise \"rollguard.max_observed\" and restart the server, then call rollguard.forget_unrecorded().")));
	}
	if (hash_get_num_entries(lost_hash) > 0)
	{
		HASH_SEQ_STATUS lstatus;
		LostEntry  *lost;

		hash_seq_init(&lstatus, lost_hash);
		while ((lost = hash_seq_search(&lstatus)) != NULL)
		{
			RgObserved *o;

			if (lost->key.dbid != MyDatabaseId ||
				strcmp(NameStr(lost->key.nspname), nspname) != 0 ||
				strcmp(NameStr(lost->key.relname), relname) != 0)
				continue;
			o = palloc0(sizeof(RgObserved));
			o->version = pstrdup(lost->key.version);
			o->attname = NULL;
			o->reads = o->writes = true;
			o->last_seen = lost->last_lost;
			o->unrecorded = true;
			o->by_version_limit = lost->by_version_limit;
			result = lappend(result, o);
		}
	}
	count = hash_search(relcount_hash, &ckey, HASH_FIND, NULL);
	if (count == NULL)
	{
		LWLockRelease(observed->lock);
		return result;
	}
	max = count->entries;
	found = palloc(sizeof(ObservedRecord) * max);
	hash_seq_init(&status, observed_hash);
	while ((entry = hash_seq_search(&status)) != NULL)
	{
		if (entry->key.dbid != MyDatabaseId ||
			strcmp(NameStr(entry->key.nspname), nspname) != 0 ||
			strcmp(NameStr(entry->key.relname), relname) != 0 ||
			(attname != NULL && strcmp(NameStr(entry->key.attname), attname) != 0))
			continue;
		found[n].key = entry->key;
		SpinLockAcquire(&entry->mutex);
		found[n].reads = entry->reads;
		found[n].writes = entry->writes;
		found[n].last_seen = entry->last_seen;
		SpinLockRelease(&entry->mutex);
		if (++n >= max)
		{
			hash_seq_term(&status);
			break;
		}
	}
	LWLockRelease(observed->lock);

	for (int64 i = 0; i < n; i++)
	{
		RgObserved *o = palloc0(sizeof(RgObserved));

		o->version = pstrdup(found[i].key.version);
		o->attname = NameStr(found[i].key.attname)[0] == '\0' ? NULL :
			pstrdup(NameStr(found[i].key.attname));
		o->reads = found[i].reads;
		o->writes = found[i].writes;
		o->last_seen = found[i].last_seen;
		result = lappend(result, o);
	}
	pfree(found);
	return result;
}

static void
require_shared_memory(void)
{
	if (observed == NULL || observed_hash == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("rollguard must be loaded via \"shared_preload_libraries\""),
				 errdetail("Observed uses are kept in shared memory, which only a preloaded library has."),
				 errhint("Add rollguard to \"shared_preload_libraries\" in postgresql.conf and restart the server.")));
}

/*
 * rollguard._observed(): the observed uses in this database (the
 * rollguard.observed view).
 */
Datum
rollguard_observed(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HASH_SEQ_STATUS status;
	ObservedEntry *entry;
	ObservedRecord *found;
	long		max;
	long		n = 0;

	require_shared_memory();
	InitMaterializedSRF(fcinfo, 0);

	/*
	 * Copy this database's entries under the lock, build the rows after
	 * releasing it: a backend recording a new use waits for this lock.
	 */
	LWLockAcquire(observed->lock, LW_SHARED);
	max = hash_get_num_entries(observed_hash);
	found = palloc_extended(sizeof(ObservedRecord) * (max + 1), MCXT_ALLOC_HUGE);
	hash_seq_init(&status, observed_hash);
	while ((entry = hash_seq_search(&status)) != NULL)
	{
		if (entry->key.dbid != MyDatabaseId)
			continue;
		found[n].key = entry->key;
		SpinLockAcquire(&entry->mutex);
		found[n].reads = entry->reads;
		found[n].writes = entry->writes;
		found[n].first_seen = entry->first_seen;
		found[n].last_seen = entry->last_seen;
		SpinLockRelease(&entry->mutex);
		n++;
	}
	LWLockRelease(observed->lock);

	for (long i = 0; i < n; i++)
	{
		Datum		values[7];
		bool		nulls[7] = {0};

		values[0] = CStringGetTextDatum(found[i].key.version);
		values[1] = CStringGetTextDatum(psprintf("%s.%s", NameStr(found[i].key.nspname),
												 NameStr(found[i].key.relname)));
		if (NameStr(found[i].key.attname)[0] != '\0')
			values[2] = NameGetDatum(&found[i].key.attname);
		else
			nulls[2] = true;	/* the relation itself */
		values[3] = BoolGetDatum(found[i].reads);
		values[4] = BoolGetDatum(found[i].writes);
		values[5] = TimestampTzGetDatum(found[i].first_seen);
		values[6] = TimestampTzGetDatum(found[i].last_seen);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	pfree(found);
	return (Datum) 0;
}

/*
 * rollguard._observed_stats(): entries (every database), the limit, uses
 * not recorded since the server started because the table was full, and
 * when the file was last written.
 */
Datum
rollguard_observed_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[4];
	bool		nulls[4] = {0};
	int64		entries;
	TimestampTz saved_at;

	require_shared_memory();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	LWLockAcquire(observed->lock, LW_SHARED);
	entries = hash_get_num_entries(observed_hash);
	LWLockRelease(observed->lock);
	SpinLockAcquire(&observed->mutex);
	saved_at = observed->saved_at;
	SpinLockRelease(&observed->mutex);

	values[0] = Int64GetDatum(entries);
	values[1] = Int32GetDatum(observed->max_entries);
	values[2] = Int64GetDatum((int64) pg_atomic_read_u64(&observed->dropped));
	if (saved_at != 0)
		values[3] = TimestampTzGetDatum(saved_at);
	else
		nulls[3] = true;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * rollguard._clear_observed(version, nspname, relname, attname): removes
 * the matching uses of this database (NULL matches anything); returns how
 * many.  Backends record a use they see again at once.
 */
Datum
rollguard_clear_observed(PG_FUNCTION_ARGS)
{
	char	   *version = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *nspname = PG_ARGISNULL(1) ? NULL : NameStr(*PG_GETARG_NAME(1));
	char	   *relname = PG_ARGISNULL(2) ? NULL : NameStr(*PG_GETARG_NAME(2));
	char	   *attname = PG_ARGISNULL(3) ? NULL : NameStr(*PG_GETARG_NAME(3));
	HASH_SEQ_STATUS status;
	ObservedEntry *entry;
	int64		removed = 0;
	List	   *gone = NIL;

	require_shared_memory();

	/*
	 * Uses recorded in databases that have been dropped since can be
	 * cleared from no database: any clear takes them away too (not counted,
	 * they are not this database's).  Which databases are gone is asked of
	 * pg_database without holding the table's lock.
	 */
	{
		List	   *dbids = NIL;
		ListCell   *lc;

		LWLockAcquire(observed->lock, LW_SHARED);
		hash_seq_init(&status, observed_hash);
		while ((entry = hash_seq_search(&status)) != NULL)
			dbids = list_append_unique_oid(dbids, entry->key.dbid);
		LWLockRelease(observed->lock);
		foreach(lc, dbids)
			if (!SearchSysCacheExists1(DATABASEOID, ObjectIdGetDatum(lfirst_oid(lc))))
				gone = lappend_oid(gone, lfirst_oid(lc));
	}

	LWLockAcquire(observed->lock, LW_EXCLUSIVE);
	hash_seq_init(&status, observed_hash);
	while ((entry = hash_seq_search(&status)) != NULL)
	{
		if (list_member_oid(gone, entry->key.dbid))
		{
			remove_entry(entry);
			continue;
		}
		if (entry->key.dbid != MyDatabaseId ||
			(version != NULL && strcmp(entry->key.version, version) != 0) ||
			(nspname != NULL && strcmp(NameStr(entry->key.nspname), nspname) != 0) ||
			(relname != NULL && strcmp(NameStr(entry->key.relname), relname) != 0) ||
			(attname != NULL && strcmp(NameStr(entry->key.attname), attname) != 0))
			continue;
		remove_entry(entry);
		removed++;
	}
	LWLockRelease(observed->lock);
	if (removed > 0 || gone != NIL)
	{
		pg_atomic_fetch_add_u32(&observed->clear_generation, 1);
		pg_atomic_fetch_add_u64(&observed->changes, 1);
	}
	PG_RETURN_INT64(removed);
}

/*
 * rollguard._unrecorded(): the losses of this database -- relations whose
 * uses by a version could not all be recorded (the rollguard.unrecorded
 * view) -- and, with version and relation NULL, the mark that losses went
 * unnoted (in any database).
 */
Datum
rollguard_unrecorded(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HASH_SEQ_STATUS status;
	LostEntry  *lost;
	LostEntry  *found;
	long		max;
	long		n = 0;
	TimestampTz unnoted;

	require_shared_memory();
	InitMaterializedSRF(fcinfo, 0);

	LWLockAcquire(observed->lock, LW_SHARED);
	unnoted = observed->lost_unnoted;
	max = hash_get_num_entries(lost_hash);
	found = palloc(sizeof(LostEntry) * (max + 1));
	hash_seq_init(&status, lost_hash);
	while ((lost = hash_seq_search(&status)) != NULL)
	{
		if (lost->key.dbid == MyDatabaseId)
			found[n++] = *lost;
	}
	LWLockRelease(observed->lock);

	for (long i = 0; i <= n; i++)
	{
		Datum		values[5];
		bool		nulls[5] = {0};

		if (i == n)
		{
			if (unnoted == 0)
				break;
			nulls[0] = nulls[1] = true;
			values[2] = CStringGetTextDatum("losses not noted");
			values[3] = values[4] = TimestampTzGetDatum(unnoted);
		}
		else
		{
			values[0] = CStringGetTextDatum(found[i].key.version);
			values[1] = CStringGetTextDatum(psprintf("%s.%s", NameStr(found[i].key.nspname),
													 NameStr(found[i].key.relname)));
			values[2] = CStringGetTextDatum(found[i].by_version_limit
											? "rollguard.max_observed_per_version"
											: "rollguard.max_observed");
			values[3] = TimestampTzGetDatum(found[i].first_lost);
			values[4] = TimestampTzGetDatum(found[i].last_lost);
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	pfree(found);
	return (Datum) 0;
}

/*
 * rollguard._forget_unrecorded(version, nspname, relname): forgets the
 * matching losses of this database (NULL matches anything), and with all
 * three NULL the mark that losses went unnoted; returns how many losses.
 */
Datum
rollguard_forget_unrecorded(PG_FUNCTION_ARGS)
{
	char	   *version = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *nspname = PG_ARGISNULL(1) ? NULL : NameStr(*PG_GETARG_NAME(1));
	char	   *relname = PG_ARGISNULL(2) ? NULL : NameStr(*PG_GETARG_NAME(2));
	HASH_SEQ_STATUS status;
	LostEntry  *lost;
	int64		removed = 0;
	List	   *dbids = NIL;
	List	   *gone = NIL;
	ListCell   *lc;

	require_shared_memory();
	/* losses in databases dropped since go too (not counted) */
	LWLockAcquire(observed->lock, LW_SHARED);
	hash_seq_init(&status, lost_hash);
	while ((lost = hash_seq_search(&status)) != NULL)
		dbids = list_append_unique_oid(dbids, lost->key.dbid);
	LWLockRelease(observed->lock);
	foreach(lc, dbids)
		if (!SearchSysCacheExists1(DATABASEOID, ObjectIdGetDatum(lfirst_oid(lc))))
			gone = lappend_oid(gone, lfirst_oid(lc));

	LWLockAcquire(observed->lock, LW_EXCLUSIVE);
	hash_seq_init(&status, lost_hash);
	while ((lost = hash_seq_search(&status)) != NULL)
	{
		if (list_member_oid(gone, lost->key.dbid))
		{
			hash_search(lost_hash, &lost->key, HASH_REMOVE, NULL);
			continue;
		}
		if (lost->key.dbid != MyDatabaseId ||
			(version != NULL && strcmp(lost->key.version, version) != 0) ||
			(nspname != NULL && strcmp(NameStr(lost->key.nspname), nspname) != 0) ||
			(relname != NULL && strcmp(NameStr(lost->key.relname), relname) != 0))
			continue;
		hash_search(lost_hash, &lost->key, HASH_REMOVE, NULL);
		removed++;
	}
	if (version == NULL && nspname == NULL && relname == NULL && observed->lost_unnoted != 0)
	{
		observed->lost_unnoted = 0;
		removed++;
	}
	LWLockRelease(observed->lock);
	if (removed > 0)
		pg_atomic_fetch_add_u64(&observed->changes, 1);
	PG_RETURN_INT64(removed);
}
