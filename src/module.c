/*-------------------------------------------------------------------------
 * module.c
 *		Module entry: _PG_init asks each part to define its settings and
 *		(when preloaded) install its hooks; the one shared-memory request
 *		and startup (the tagged sessions' slots, the observed uses); and
 *		the preload check.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "compat.h"
#include "rollguard.h"

PG_MODULE_MAGIC;

static bool preloaded = false;

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* Shared memory: the tagged sessions' slots, and the observed uses. */
static void
request_shmem(void)
{
	rg_sessions_shmem_request();
	rg_observed_shmem_request();
}

#if PG_VERSION_NUM >= 150000
static void
rg_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	request_shmem();
}
#endif

static void
rg_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	rg_sessions_shmem_startup();
	rg_observed_shmem_startup();
}

void		_PG_init(void);

PG_FUNCTION_INFO_V1(rollguard_require_preload);
PG_FUNCTION_INFO_V1(rollguard_who);

void
_PG_init(void)
{
	/* rollguard.enforce */
	rg_report_define_settings();

	/* rollguard.lock_checks, rollguard.lock_checks_min_size */
	rg_lock_define_settings();

	/* rollguard.deployment, rollguard.version: the session tags */
	rg_sessions_define_settings();

	/* rollguard.observe, rollguard.max_observed, ..._save_interval */
	rg_observed_define_settings();

	MarkGUCPrefixReserved("rollguard");

	/*
	 * The guard works only when loaded into every backend at start.  Loaded
	 * any other way (a function call, LOAD), the library installs no hook,
	 * and CREATE EXTENSION and the deploy functions refuse to run.
	 */
	if (!process_shared_preload_libraries_in_progress)
		return;

	preloaded = true;
#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = rg_shmem_request;
#else
	request_shmem();
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = rg_shmem_startup;
	rg_install_hooks();
	rg_sessions_install_hooks();
	rg_observed_install_hooks();
}

/*
 * rollguard._require_preload(): errors out unless the library was preloaded.
 */
Datum
rollguard_require_preload(PG_FUNCTION_ARGS)
{
	if (!preloaded)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("rollguard must be loaded via \"shared_preload_libraries\""),
				 errdetail("Without it, no schema change would be checked."),
				 errhint("Add rollguard to \"shared_preload_libraries\" in postgresql.conf and restart the server.")));
	PG_RETURN_VOID();
}

/*
 * rollguard._who(): the role the session acts as (SET ROLE included), also
 * inside SECURITY DEFINER functions, for rollguard.history.
 */
Datum
rollguard_who(PG_FUNCTION_ARGS)
{
	Name		result = palloc0(NAMEDATALEN);

	namestrcpy(result, GetUserNameFromId(GetOuterUserId(), false));
	PG_RETURN_NAME(result);
}
