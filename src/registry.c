/*-------------------------------------------------------------------------
 * registry.c
 *		Reading the registry of live versions from the C side.
 *
 * The guard runs as whoever runs the migration, who usually may not read the
 * registry tables.  Like the foreign-key triggers, it reads them as their
 * owner (the extension's owner), through SPI, with a saved plan whose SQL
 * names every object and operator schema-qualified.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"

#include "rollguard.h"

/* Set by rg_extension_active(): whom the registry is read as. */
static Oid	ext_owner = InvalidOid;

static SPIPlanPtr usage_plan = NULL;

/*
 * Is the extension created in this database (and not being created right
 * now)?  The common "no" costs one syscache probe: the extension's schema
 * has a fixed name.
 */
bool
rg_extension_active(void)
{
	Oid			nsp;
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	Oid			extoid = InvalidOid;
	Oid			owner = InvalidOid;

	nsp = get_namespace_oid("rollguard", true);
	if (!OidIsValid(nsp))
		return false;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum("rollguard"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		Form_pg_extension ext = (Form_pg_extension) GETSTRUCT(tup);

		extoid = ext->oid;
		owner = ext->extowner;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	if (!OidIsValid(extoid))
		return false;
	/* our own install or upgrade script: the registry may not exist yet */
	if (creating_extension && CurrentExtensionObject == extoid)
		return false;

	ext_owner = owner;
	return true;
}

/*
 * Every row of every live version's effective contract for one relation,
 * ordered by deployment and version.  Allocated in the caller's context.
 */
List *
rg_fetch_usage(const char *nspname, const char *relname)
{
	MemoryContext outer = CurrentMemoryContext;
	Oid			save_userid;
	int			save_sec_context;
	Datum		values[2];
	List	   *result = NIL;
	int			ret;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(ext_owner, save_sec_context |
						   SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "rollguard: SPI_connect failed");

	if (usage_plan == NULL)
	{
		Oid			argtypes[2] = {TEXTOID, TEXTOID};
		SPIPlanPtr	plan;

		plan = SPI_prepare(
			"SELECT d.deployment, d.version, d.state OPERATOR(pg_catalog.=) 'rolling out',"
			"       c.attname, c.writes, c.nullable"
			"  FROM rollguard.deployment_state d"
			"  JOIN rollguard.effective_contract c"
			"    ON c.version OPERATOR(pg_catalog.=) d.version"
			" WHERE c.nspname OPERATOR(pg_catalog.=) $1"
			"   AND c.relname OPERATOR(pg_catalog.=) $2"
			" ORDER BY rollguard.version_sort_key(d.deployment),"
			"          d.deployment COLLATE \"C\","
			"          rollguard.version_sort_key(d.version),"
			"          d.version COLLATE \"C\","
			"          c.attname COLLATE \"C\"",
			2, argtypes);
		if (plan == NULL)
			elog(ERROR, "rollguard: SPI_prepare failed: %s",
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		usage_plan = plan;
	}

	values[0] = CStringGetTextDatum(nspname);
	values[1] = CStringGetTextDatum(relname);
	ret = SPI_execute_plan(usage_plan, values, NULL, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "rollguard: registry query failed: %s",
			 SPI_result_code_string(ret));

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		MemoryContext spi = MemoryContextSwitchTo(outer);
		RgUsage    *u = palloc0(sizeof(RgUsage));

		u->deployment = SPI_getvalue(tup, desc, 1);
		u->version = SPI_getvalue(tup, desc, 2);
		u->rolling_out = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
		u->attname = SPI_getvalue(tup, desc, 4);
		u->writes = DatumGetBool(SPI_getbinval(tup, desc, 5, &isnull));
		u->nullable = DatumGetBool(SPI_getbinval(tup, desc, 6, &isnull));
		result = lappend(result, u);
		MemoryContextSwitchTo(spi);
	}

	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec_context);
	return result;
}
