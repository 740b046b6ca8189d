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
 * uses are not recorded (nothing is evicted: losing a use would weaken the
 * guard), counted, and logged once per backend.
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
#define OBSERVED_FILE_FORMAT 1

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

typedef struct ObservedShared
{
	LWLock	   *lock;			/* both hash tables */
	int			max_entries;
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
} ObservedFileHeader;

/* The settings. */
static int	rg_max_observed = 10000;
static int	rg_observed_save_interval = 10;

static ObservedShared *observed = NULL;
static HTAB *observed_hash = NULL;
static HTAB *relcount_hash = NULL;

static bool overflow_logged = false;

PG_FUNCTION_INFO_V1(rollguard_observed);
PG_FUNCTION_INFO_V1(rollguard_observed_stats);
PG_FUNCTION_INFO_V1(rollguard_clear_observed);

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

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	observed = ShmemInitStruct("rollguard observed", sizeof(ObservedShared), &found);
	if (!found)
	{
		observed->lock = &(GetNamedLWLockTranche("rollguard observed"))->lock;
		observed->max_entries = rg_max_observed;
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

/*
 * Adds an entry, with the exclusive lock held; false if the table is full.
 * The relation's count goes up with it.
 */
static bool
insert_entry(const ObservedKey *key, bool reads, bool writes,
			 TimestampTz first_seen, TimestampTz last_seen)
{
	ObservedEntry *entry;
	RelCount   *count;
	RelCountKey ckey;
	bool		found;

	if (hash_get_num_entries(observed_hash) >= observed->max_entries)
		return false;
	entry = hash_search(observed_hash, key, HASH_ENTER_NULL, &found);
	if (entry == NULL)
		return false;
	if (found)
	{
		/* (only when loading a file with duplicates) */
		entry->reads |= reads;
		entry->writes |= writes;
		entry->first_seen = Min(entry->first_seen, first_seen);
		entry->last_seen = Max(entry->last_seen, last_seen);
		return true;
	}
	memset(&ckey, 0, sizeof(ckey));
	ckey.dbid = key->dbid;
	ckey.nspname = key->nspname;
	ckey.relname = key->relname;
	count = hash_search(relcount_hash, &ckey, HASH_ENTER_NULL, &found);
	if (count == NULL)
	{
		hash_search(observed_hash, key, HASH_REMOVE, NULL);
		return false;
	}
	if (!found)
		count->entries = 0;
	count->entries++;
	SpinLockInit(&entry->mutex);
	entry->reads = reads;
	entry->writes = writes;
	entry->first_seen = first_seen;
	entry->last_seen = last_seen;
	return true;
}

/* Removes an entry, with the exclusive lock held. */
static void
remove_entry(ObservedEntry *entry)
{
	RelCountKey ckey;
	RelCount   *count;

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
	bool		inserted;

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
		inserted = true;
	}
	else
		inserted = insert_entry(key, reads, writes, now, now);
	LWLockRelease(observed->lock);

	if (inserted)
	{
		pg_atomic_fetch_add_u64(&observed->changes, 1);
		return;
	}
	pg_atomic_fetch_add_u64(&observed->dropped, 1);
	if (!overflow_logged)
	{
		overflow_logged = true;
		ereport(LOG,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("rollguard cannot record more observed uses: \"rollguard.max_observed\" is %d",
						observed->max_entries),
				 errdetail("The use of %s.%s.%s by version \"%s\" was not recorded; nor will others that are new, until there is room.",
						   NameStr(key->nspname), NameStr(key->relname),
						   NameStr(key->attname), key->version),
				 errhint("Raise \"rollguard.max_observed\" and restart the server, or remove uses that no longer matter with rollguard.clear_observed().")));
	}
}

/*----------------------------------------------------------------------
 * The file
 *----------------------------------------------------------------------
 */

/* Writes records to the file (temporary name, then renamed in place). */
static bool
write_observed_file(ObservedRecord *records, int64 count)
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
	INIT_CRC32C(crc);
	COMP_CRC32C(crc, &header, sizeof(header));
	if (count > 0)
		COMP_CRC32C(crc, records, sizeof(ObservedRecord) * count);
	FIN_CRC32C(crc);
	if (fwrite(&header, sizeof(header), 1, file) != 1 ||
		(count > 0 && fwrite(records, sizeof(ObservedRecord), count, file) != (size_t) count) ||
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
 * A copy of every entry.  lock: take the LWLock (a background worker); the
 * postmaster cannot, and needs not: it runs this when every backend is gone.
 */
static ObservedRecord *
snapshot_records(bool lock, int64 *count)
{
	ObservedRecord *records;
	HASH_SEQ_STATUS status;
	ObservedEntry *entry;
	int64		n = 0;
	int64		max;

	if (lock)
		LWLockAcquire(observed->lock, LW_SHARED);
	max = hash_get_num_entries(observed_hash);
	records = palloc0(sizeof(ObservedRecord) * Max(max, 1));
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
	if (lock)
		LWLockRelease(observed->lock);
	*count = n;
	return records;
}

static void
save_observed(bool lock)
{
	int64		count;
	ObservedRecord *records = snapshot_records(lock, &count);

	write_observed_file(records, count);
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
	else if (header.format != OBSERVED_FILE_FORMAT ||
			 header.record_size != sizeof(ObservedRecord))
		problem = "It was written in another format.";
	else if (header.count < 0 ||
			 (uint64) st.st_size != sizeof(header) + (uint64) header.count * sizeof(ObservedRecord) + sizeof(pg_crc32c))
		problem = "Its size does not match the number of entries it announces.";
	else
	{
		INIT_CRC32C(crc);
		COMP_CRC32C(crc, &header, sizeof(header));
		for (int64 i = 0; i < header.count && problem == NULL; i++)
		{
			if (fread(&record, sizeof(record), 1, file) != 1)
				problem = "It is too short.";
			else
			{
				COMP_CRC32C(crc, &record, sizeof(record));
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
		if (insert_entry(&record.key, record.reads, record.writes,
						 record.first_seen, record.last_seen))
			loaded++;
		else
			skipped++;
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
				 errhint("Raise \"rollguard.max_observed\" and restart the server.")));
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
 * (those have attname NULL in the result).
 * One probe of the small per-relation table under LW_SHARED when nothing
 * was observed on the relation; else a scan of every entry under LW_SHARED.
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
	count = hash_search(relcount_hash, &ckey, HASH_FIND, NULL);
	if (count == NULL)
	{
		LWLockRelease(observed->lock);
		return NIL;
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
		RgObserved *o = palloc(sizeof(RgObserved));

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
