/*-------------------------------------------------------------------------
 * forward_check.c
 *		The deploy steps' forward check, its part that grows with the
 *		contract: which of a version's columns no longer exist.
 *
 * rollguard._prepare_live() refuses a version whose contract names columns
 * a contract migration has removed (rollguard._missing_columns()).  A
 * contract lists thousands of columns; asked in SQL, every one is a row of
 * pg_attribute read, hashed and compared by name (6 ms for 5,000 columns,
 * and a plan made on every call).  Here the relation is looked up by name
 * in the backend's catalog caches, the names of all its columns are read
 * in one scan of pg_attribute's index, once per relation, and each column
 * of the contract is looked up in a hash table of those names.  Both read
 * the latest committed catalog (what a READ COMMITTED deploy step must see:
 * it took the registry's lock, which reads the invalidations of every
 * migration that committed meanwhile).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

#include "compat.h"
#include "registry.h"

PG_FUNCTION_INFO_V1(rollguard_absent_columns);

/* a version's contract, by its primary key (version, nspname, relname, attname) */
static SPIPlanPtr contract_plan = NULL;

/* the relation's OID, InvalidOid if there is none of that name */
static Oid
relation_by_name(const char *nspname, const char *relname)
{
	Oid			nspid;

	if (strlen(nspname) >= NAMEDATALEN || strlen(relname) >= NAMEDATALEN)
		return InvalidOid;
	nspid = get_namespace_oid(nspname, true);
	if (!OidIsValid(nspid))
		return InvalidOid;
	return get_relname_relid(relname, nspid);
}

/*
 * The names of the relation's user columns (not dropped, not system ones),
 * NULL if there is no such relation.  One scan of pg_attribute's index on
 * (attrelid, attnum) reads them all, straight into a hash table of names:
 * a lookup by name per column would be one index scan each in a new
 * connection, where deploy scripts run, and a list search of the catalog
 * cache would copy every tuple into the cache first (for 5,000 columns, a
 * few megabytes that a new backend pays for in page faults).  The scan uses
 * the catalog snapshot, which sees what the catalog caches see.
 */
static HTAB *
relation_columns(Relation attrel, Oid relid)
{
	ScanKeyData key[2];
	SysScanDesc scan;
	HeapTuple	tuple;
	HASHCTL		ctl;
	HTAB	   *names;

	if (!OidIsValid(relid))
		return NULL;
	ctl.keysize = NAMEDATALEN;
	ctl.entrysize = NAMEDATALEN;
	ctl.hcxt = CurrentMemoryContext;
	names = hash_create("rollguard relation columns", 128, &ctl,
						HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	ScanKeyInit(&key[0], Anum_pg_attribute_attrelid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(relid));
	ScanKeyInit(&key[1], Anum_pg_attribute_attnum, BTGreaterStrategyNumber,
				F_INT2GT, Int16GetDatum(0));
	scan = systable_beginscan(attrel, AttributeRelidNumIndexId, true, NULL, 2, key);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		Form_pg_attribute att = (Form_pg_attribute) GETSTRUCT(tuple);

		if (!att->attisdropped)
			(void) hash_search(names, NameStr(att->attname), HASH_ENTER, NULL);
	}
	systable_endscan(scan);
	return names;
}

/* whether the relation's columns (relation_columns()) include that name */
static bool
column_exists(HTAB *columns, const char *attname)
{
	if (columns == NULL || strlen(attname) >= NAMEDATALEN)
		return false;
	return hash_search(columns, attname, HASH_FIND, NULL) != NULL;
}

/*
 * rollguard._absent_columns(version text)
 *		RETURNS TABLE (nspname text, relname text, attname text)
 *
 * The columns of the version's contract (as registered: declarations are
 * the caller's) that do not exist now.  Usually none.
 */
Datum
rollguard_absent_columns(PG_FUNCTION_ARGS)
{
	Datum		version = PG_GETARG_DATUM(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *last_nsp = NULL;
	char	   *last_rel = NULL;
	HTAB	   *columns = NULL;
	Relation	attrel;
	int			ret;

	InitMaterializedSRF(fcinfo, 0);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "rollguard: SPI_connect failed");
	if (contract_plan == NULL)
	{
		Oid			argtypes[1] = {TEXTOID};

		contract_plan = rg_prepare_saved("SELECT c.nspname, c.relname, c.attname"
										 " FROM rollguard.contract c"
										 " WHERE c.version OPERATOR(pg_catalog.=) $1"
										 " ORDER BY c.nspname, c.relname",
										 1, argtypes);
	}
	ret = SPI_execute_plan(contract_plan, &version, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "rollguard: could not read the contract: %s",
			 SPI_result_code_string(ret));

	attrel = table_open(AttributeRelationId, AccessShareLock);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	row = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		values[3];
		bool		nulls[3] = {false, false, false};
		char	   *nsp;
		char	   *rel;
		char	   *att;

		for (int k = 0; k < 3; k++)
		{
			values[k] = SPI_getbinval(row, desc, k + 1, &isnull);
			if (isnull)			/* NOT NULL columns */
				elog(ERROR, "rollguard: a contract row has a null name");
		}
		nsp = TextDatumGetCString(values[0]);
		rel = TextDatumGetCString(values[1]);
		att = TextDatumGetCString(values[2]);
		/* rows come relation by relation: each looked up once */
		if (last_nsp == NULL || strcmp(nsp, last_nsp) != 0 || strcmp(rel, last_rel) != 0)
		{
			if (columns != NULL)
				hash_destroy(columns);
			columns = relation_columns(attrel, relation_by_name(nsp, rel));
			last_nsp = nsp;
			last_rel = rel;
		}
		if (!column_exists(columns, att))
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	table_close(attrel, AccessShareLock);
	SPI_finish();
	PG_RETURN_NULL();
}
