/*-------------------------------------------------------------------------
 * liveness.c
 *		Liveness evidence of deployments: when a tagged session of each
 *		deployment was last connected, kept across restarts; and the
 *		settings rollguard.stale_after and rollguard.forget_after.
 *
 * A deployment the registry says is live may be gone (a mirror deleted
 * from a dashboard, an instance of a rolling update that died): only its
 * evidence tells.  Its deploy steps are in the registry
 * (rollguard.deployment_seen, stamped by every deploy step); its tagged
 * sessions are in shared memory (sessions.c), which forgets them when they
 * end.  So sessions.c stamps here, per (database, login role, deployment),
 * the time a session tags itself, drops its tag or ends: at those moments
 * only, never per statement (one LWLock and one hash probe each).  The
 * observed saver (observed_store.c) writes the table to
 * pg_stat/rollguard_seen.dat when it changed, the postmaster at shutdown;
 * it is read back at startup.  The role is kept so that the stamp counts
 * only while the role may provide evidence (rollguard_tag): that is
 * decided when it is read, in a transaction.
 *
 * What is derived from this (rollguard._liveness(): connected, seen,
 * stale, expired) is SQL; the guard filters expired deployments out and
 * words stale ones (rules.c, report.c).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>
#include <unistd.h>

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "port/pg_crc32c.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"

#include "rollguard.h"

/* How many (database, role, deployment) stamps shared memory holds. */
#define SEEN_MAX_ENTRIES 4096

#define SEEN_FILE "pg_stat/rollguard_seen.dat"
#define SEEN_FILE_TMP SEEN_FILE ".tmp"
#define SEEN_FILE_MAGIC 0x52475345	/* "RGSE" */
#define SEEN_FILE_FORMAT 1

/* Hashed as bytes: zero-padded. */
typedef struct SeenKey
{
	Oid			dbid;
	Oid			userid;
	char		deployment[RG_LABEL_MAX + 1];
} SeenKey;

typedef struct SeenEntry
{
	SeenKey		key;
	TimestampTz last_connected;
} SeenEntry;

typedef struct SeenShared
{
	LWLock	   *lock;
	pg_atomic_uint64 changes;	/* bumped by every stamp, for the saver */
} SeenShared;

typedef struct SeenFileHeader
{
	uint32		magic;
	uint32		format;
	uint32		record_size;
	uint32		unused;
	int64		count;
} SeenFileHeader;

static SeenShared *seen = NULL;
static HTAB *seen_hash = NULL;
static bool full_logged = false;

/* The settings (text, as given; "off" when off). */
static char *rg_stale_after = NULL;
static char *rg_forget_after = NULL;

PG_FUNCTION_INFO_V1(rollguard_connected_seen);

/*----------------------------------------------------------------------
 * The settings
 *----------------------------------------------------------------------
 */

/*
 * An interval setting: "off" (in any case), or an interval
 * that is not negative ("0" is off too).  Anything else is refused with
 * PostgreSQL's own reason.
 */
static bool
check_interval_setting(char **newval, const char *name)
{
	MemoryContext cxt = CurrentMemoryContext;
	Interval   *volatile iv = NULL;
	char	   *volatile message = NULL;

	if (pg_strcasecmp(*newval, "off") == 0)
		return true;
	PG_TRY();
	{
		iv = DatumGetIntervalP(DirectFunctionCall3(interval_in,
												   CStringGetDatum(*newval),
												   ObjectIdGetDatum(InvalidOid),
												   Int32GetDatum(-1)));
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		message = edata->message;
	}
	PG_END_TRY();
	if (iv == NULL)
	{
		GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
		GUC_check_errmsg("invalid value for parameter \"%s\": \"%s\"", name, *newval);
		GUC_check_errdetail("%s", message ? message : "It is not an interval.");
		GUC_check_errhint("Give an interval such as '14 days', or off.");
		return false;
	}
	if (iv->time < 0 || iv->day < 0 || iv->month < 0)
	{
		GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
		GUC_check_errmsg("invalid value for parameter \"%s\": \"%s\"", name, *newval);
		GUC_check_errdetail("The interval must not be negative.");
		GUC_check_errhint("Give an interval such as '14 days', or off.");
		return false;
	}
	return true;
}

static bool
check_stale_after(char **newval, void **extra, GucSource source)
{
	return check_interval_setting(newval, "rollguard.stale_after");
}

static bool
check_forget_after(char **newval, void **extra, GucSource source)
{
	return check_interval_setting(newval, "rollguard.forget_after");
}

void
rg_liveness_define_settings(void)
{
	DefineCustomStringVariable("rollguard.stale_after",
							   "How long a live deployment may go without evidence before refusals say it has not been seen.",
							   "Evidence: a deploy step, or a tagged session connected.  off: never said.",
							   &rg_stale_after,
							   "1 day",
							   PGC_USERSET,
							   0,
							   check_stale_after, NULL, NULL);
	DefineCustomStringVariable("rollguard.forget_after",
							   "How long a deployment may go without evidence before it no longer counts as live.",
							   "Evidence: a deploy step, or a tagged session connected.  off (the default): deployments never expire.",
							   &rg_forget_after,
							   "off",
							   PGC_SUSET,
							   0,
							   check_forget_after, NULL, NULL);
}

/* Is rollguard.forget_after on? */
bool
rg_forget_after_on(void)
{
	return rg_forget_after != NULL && pg_strcasecmp(rg_forget_after, "off") != 0;
}

/*----------------------------------------------------------------------
 * Shared memory and the stamps
 *----------------------------------------------------------------------
 */

static Size
seen_shmem_size(void)
{
	return add_size(MAXALIGN(sizeof(SeenShared)),
					hash_estimate_size(SEEN_MAX_ENTRIES, sizeof(SeenEntry)));
}

void
rg_liveness_shmem_request(void)
{
	RequestAddinShmemSpace(seen_shmem_size());
	RequestNamedLWLockTranche("rollguard liveness", 1);
}

static void seen_shmem_shutdown(int code, Datum arg);
static void load_seen(void);

void
rg_liveness_shmem_startup(void)
{
	bool		found;
	HASHCTL		info;

	seen = NULL;
	seen_hash = NULL;
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	seen = ShmemInitStruct("rollguard liveness", sizeof(SeenShared), &found);
	if (!found)
	{
		seen->lock = &(GetNamedLWLockTranche("rollguard liveness"))->lock;
		pg_atomic_init_u64(&seen->changes, 0);
	}
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(SeenKey);
	info.entrysize = sizeof(SeenEntry);
	seen_hash = ShmemInitHash("rollguard deployments seen",
							  SEEN_MAX_ENTRIES, SEEN_MAX_ENTRIES,
							  &info, HASH_ELEM | HASH_BLOBS);
	LWLockRelease(AddinShmemInitLock);

	/* the postmaster reads the file, and writes it at shutdown */
	if (!IsUnderPostmaster)
	{
		on_shmem_exit(seen_shmem_shutdown, (Datum) 0);
		if (!found)
			load_seen();
	}
}

static void
make_key(SeenKey *key, Oid dbid, Oid userid, const char *deployment)
{
	memset(key, 0, sizeof(*key));
	key->dbid = dbid;
	key->userid = userid;
	strlcpy(key->deployment, deployment, sizeof(key->deployment));
}

/* Stores a stamp (the later of the two, if there is one already). */
static void
put_stamp(const SeenKey *key, TimestampTz at)
{
	SeenEntry  *entry;
	bool		found;

	entry = hash_search(seen_hash, key, HASH_ENTER_NULL, &found);
	if (entry == NULL)
	{
		if (!full_logged)
			ereport(LOG,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("rollguard could not record when deployment \"%s\" was last connected: the table holds %d entries",
							key->deployment, SEEN_MAX_ENTRIES),
					 errdetail("Its tagged sessions connected now still count; when it was last connected is not kept.")));
		full_logged = true;
		return;
	}
	if (!found || entry->last_connected < at)
		entry->last_connected = at;
}

/*
 * A tagged session of deployment (login role userid) in database dbid is
 * connected now: it tagged itself, drops its tag, or ends.  Never fails
 * (called from assign hooks and at exit).
 */
void
rg_liveness_stamp(Oid dbid, Oid userid, const char *deployment)
{
	SeenKey		key;

	if (seen == NULL || seen_hash == NULL || deployment == NULL || deployment[0] == '\0' ||
		!OidIsValid(dbid))
		return;
	make_key(&key, dbid, userid, deployment);
	LWLockAcquire(seen->lock, LW_EXCLUSIVE);
	put_stamp(&key, GetCurrentTimestamp());
	LWLockRelease(seen->lock);
	pg_atomic_fetch_add_u64(&seen->changes, 1);
}

/*----------------------------------------------------------------------
 * The file
 *----------------------------------------------------------------------
 */

static void
save_seen(bool lock)
{
	SeenEntry  *records;
	HASH_SEQ_STATUS status;
	SeenEntry  *entry;
	int64		n = 0;
	int64		max;
	FILE	   *file;
	SeenFileHeader header;
	pg_crc32c	crc;

	if (lock)
		LWLockAcquire(seen->lock, LW_SHARED);
	max = hash_get_num_entries(seen_hash);
	records = palloc0(sizeof(SeenEntry) * (max + 1));
	hash_seq_init(&status, seen_hash);
	while ((entry = hash_seq_search(&status)) != NULL)
	{
		if (n >= max)
		{
			hash_seq_term(&status);
			break;
		}
		records[n++] = *entry;
	}
	if (lock)
		LWLockRelease(seen->lock);

	file = AllocateFile(SEEN_FILE_TMP, PG_BINARY_W);
	if (file == NULL)
		goto error;
	memset(&header, 0, sizeof(header));
	header.magic = SEEN_FILE_MAGIC;
	header.format = SEEN_FILE_FORMAT;
	header.record_size = sizeof(SeenEntry);
	header.count = n;
	INIT_CRC32C(crc);
	COMP_CRC32C(crc, &header, sizeof(header));
	if (n > 0)
		COMP_CRC32C(crc, records, sizeof(SeenEntry) * n);
	FIN_CRC32C(crc);
	if (fwrite(&header, sizeof(header), 1, file) != 1 ||
		(n > 0 && fwrite(records, sizeof(SeenEntry), n, file) != (size_t) n) ||
		fwrite(&crc, sizeof(crc), 1, file) != 1)
		goto error;
	if (FreeFile(file))
	{
		file = NULL;
		goto error;
	}
	file = NULL;
	pfree(records);
	(void) durable_rename(SEEN_FILE_TMP, SEEN_FILE, LOG);
	return;

error:
	ereport(LOG,
			(errcode_for_file_access(),
			 errmsg("could not write file \"%s\": %m", SEEN_FILE_TMP)));
	if (file)
		FreeFile(file);
	unlink(SEEN_FILE_TMP);
	pfree(records);
}

/* From the observed saver: saves if a stamp was made since *saved. */
void
rg_liveness_save_if_changed(uint64 *saved)
{
	uint64		changes;

	if (seen == NULL)
		return;
	changes = pg_atomic_read_u64(&seen->changes);
	if (changes == *saved)
		return;
	save_seen(true);
	*saved = changes;
}

/* At postmaster exit: save, unless shared memory may be corrupt. */
static void
seen_shmem_shutdown(int code, Datum arg)
{
	if (code != 0 || seen == NULL || seen_hash == NULL)
		return;
	save_seen(false);
}

/* Reads the file into the empty table (postmaster, at startup). */
static void
load_seen(void)
{
	FILE	   *file;
	SeenFileHeader header;
	SeenEntry  *records = NULL;
	pg_crc32c	crc;
	pg_crc32c	stored;
	const char *problem = NULL;
	struct stat st;

	file = AllocateFile(SEEN_FILE, PG_BINARY_R);
	if (file == NULL)
	{
		if (errno != ENOENT)
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg("could not read file \"%s\": %m", SEEN_FILE)));
		return;
	}
	if (fstat(fileno(file), &st) != 0 || fread(&header, sizeof(header), 1, file) != 1)
		problem = "It is too short.";
	else if (header.magic != SEEN_FILE_MAGIC)
		problem = "It is not a file of deployments seen.";
	else if (header.format != SEEN_FILE_FORMAT || header.record_size != sizeof(SeenEntry))
		problem = "It was written in another format.";
	else if (header.count < 0 || header.count > SEEN_MAX_ENTRIES ||
			 (uint64) st.st_size != sizeof(header) +
			 (uint64) header.count * sizeof(SeenEntry) + sizeof(pg_crc32c))
		problem = "Its size does not match the number of entries it announces.";
	else
	{
		records = palloc(sizeof(SeenEntry) * (header.count + 1));
		if ((header.count > 0 &&
			 fread(records, sizeof(SeenEntry), header.count, file) != (size_t) header.count) ||
			fread(&stored, sizeof(stored), 1, file) != 1)
			problem = "It is too short.";
		else
		{
			INIT_CRC32C(crc);
			COMP_CRC32C(crc, &header, sizeof(header));
			if (header.count > 0)
				COMP_CRC32C(crc, records, sizeof(SeenEntry) * header.count);
			FIN_CRC32C(crc);
			if (!EQ_CRC32C(crc, stored))
				problem = "Its checksum does not match its contents.";
			for (int64 i = 0; problem == NULL && i < header.count; i++)
				if (records[i].key.deployment[0] == '\0' ||
					memchr(records[i].key.deployment, '\0', sizeof(records[i].key.deployment)) == NULL)
					problem = "An entry has a malformed name.";
		}
	}
	FreeFile(file);
	if (problem != NULL)
	{
		ereport(LOG,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("ignoring corrupt file \"%s\"", SEEN_FILE),
				 errdetail("%s", problem),
				 errhint("When deployments' tagged sessions were last connected starts unknown; the file is replaced at the next save.")));
		return;
	}
	for (int64 i = 0; i < header.count; i++)
	{
		SeenKey		key;

		/* re-made: the padding after the name is zero */
		make_key(&key, records[i].key.dbid, records[i].key.userid, records[i].key.deployment);
		put_stamp(&key, records[i].last_connected);
	}
	pfree(records);
}

/*----------------------------------------------------------------------
 * SQL
 *----------------------------------------------------------------------
 */

/*
 * rollguard._connected_seen(): per deployment of this database, when a
 * tagged session of it whose role may provide evidence (rollguard_tag)
 * last tagged itself, dropped its tag or ended (last_connected, NULL if
 * never), and whether one is connected now (connected).
 */
Datum
rollguard_connected_seen(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SeenEntry  *copies = NULL;
	int64		n = 0;
	List	   *names = NIL;
	List	   *times = NIL;
	List	   *connected = NIL;
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, 0);
	if (seen != NULL && seen_hash != NULL)
	{
		HASH_SEQ_STATUS status;
		SeenEntry  *entry;
		int64		max;

		LWLockAcquire(seen->lock, LW_SHARED);
		max = hash_get_num_entries(seen_hash);
		copies = palloc(sizeof(SeenEntry) * (max + 1));
		hash_seq_init(&status, seen_hash);
		while ((entry = hash_seq_search(&status)) != NULL)
		{
			if (entry->key.dbid != MyDatabaseId)
				continue;
			if (n >= max)
			{
				hash_seq_term(&status);
				break;
			}
			copies[n++] = *entry;
		}
		LWLockRelease(seen->lock);
	}

	/* the latest stamp of each deployment, by roles that may tag */
	for (int64 i = 0; i < n; i++)
	{
		int			at = -1;

		if (!rg_role_may_tag(copies[i].key.userid))
			continue;
		foreach(lc, names)
			if (strcmp(lfirst(lc), copies[i].key.deployment) == 0)
				at = foreach_current_index(lc);
		if (at < 0)
		{
			TimestampTz *t = palloc(sizeof(TimestampTz));

			*t = copies[i].last_connected;
			names = lappend(names, pstrdup(copies[i].key.deployment));
			times = lappend(times, t);
			connected = lappend_int(connected, 0);
		}
		else if (*(TimestampTz *) list_nth(times, at) < copies[i].last_connected)
			*(TimestampTz *) list_nth(times, at) = copies[i].last_connected;
	}
	/* and those connected now (trusted sessions only) */
	foreach(lc, rg_live_sessions(true))
	{
		RgSession  *s = lfirst(lc);
		ListCell   *nc;
		bool		listed = false;

		foreach(nc, names)
		{
			if (strcmp(lfirst(nc), s->deployment) == 0)
			{
				lfirst_int(list_nth_cell(connected, foreach_current_index(nc))) = 1;
				listed = true;
			}
		}
		if (!listed)
		{
			names = lappend(names, pstrdup(s->deployment));
			times = lappend(times, NULL);
			connected = lappend_int(connected, 1);
		}
	}
	foreach(lc, names)
	{
		int			i = foreach_current_index(lc);
		TimestampTz *t = list_nth(times, i);
		Datum		values[3];
		bool		nulls[3] = {0};

		values[0] = CStringGetTextDatum(lfirst(lc));
		if (t)
			values[1] = TimestampTzGetDatum(*t);
		else
			nulls[1] = true;
		values[2] = BoolGetDatum(list_nth_int(connected, i) != 0);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
