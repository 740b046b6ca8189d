/*-------------------------------------------------------------------------
 * manifest.c
 *		The shape of a manifest's relations, checked in one pass: the fast
 *		path of rollguard._manifest_columns() (rollguard--1.7.sql); a
 *		relation's columns as rows; whether a manifest is normalized already.
 *
 * rollguard._manifest_shape_ok(relations jsonb) is true when "relations"
 * is an object whose every value is a non-empty object (a relation) whose
 * every key (a column name) is 1 to 63 bytes long and whose every value is
 * an object with no members but "writes" and "nullable", each true or
 * false.  It raises nothing and says nothing about what is wrong: when it
 * is false, _manifest_columns() goes through the manifest relation by
 * relation, finds the first problem and names it, as it always did.
 * Checking this in SQL costs a dozen function calls per column, and
 * manifests list thousands of columns.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "rollguard.h"

PG_FUNCTION_INFO_V1(rollguard_manifest_shape_ok);
PG_FUNCTION_INFO_V1(rollguard_relation_columns);
PG_FUNCTION_INFO_V1(rollguard_manifest_is_normal);

static bool
key_is(const JsonbValue *k, const char *s)
{
	size_t		len = strlen(s);

	return k->type == jbvString && k->val.string.len == (int) len &&
		memcmp(k->val.string.val, s, len) == 0;
}

/* {"writes": bool, "nullable": bool}, either or both or neither */
static bool
column_ok(const JsonbValue *v)
{
	JsonbIterator *it;
	JsonbValue	k;
	JsonbValue	val;
	JsonbIteratorToken tok;

	if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		return false;
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		if (tok != WJB_KEY)
			continue;
		tok = JsonbIteratorNext(&it, &val, true);
		if (tok != WJB_VALUE || val.type != jbvBool ||
			!(key_is(&k, "writes") || key_is(&k, "nullable")))
			return false;
	}
	return true;
}

/* a non-empty object of columns, each name 1 to 63 bytes */
static bool
relation_ok(const JsonbValue *v)
{
	JsonbIterator *it;
	JsonbValue	k;
	JsonbValue	val;
	JsonbIteratorToken tok;

	if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data) ||
		JsonContainerSize(v->val.binary.data) == 0)
		return false;
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		if (tok != WJB_KEY)
			continue;
		if (k.type != jbvString || k.val.string.len == 0 || k.val.string.len >= NAMEDATALEN)
			return false;
		tok = JsonbIteratorNext(&it, &val, true);
		if (tok != WJB_VALUE || !column_ok(&val))
			return false;
	}
	return true;
}

Datum
rollguard_manifest_shape_ok(PG_FUNCTION_ARGS)
{
	Jsonb	   *relations = PG_GETARG_JSONB_P(0);
	JsonbIterator *it;
	JsonbValue	k;
	JsonbValue	val;
	JsonbIteratorToken tok;

	if (!JB_ROOT_IS_OBJECT(relations))
		PG_RETURN_BOOL(false);
	it = JsonbIteratorInit(&relations->root);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		if (tok != WJB_KEY)
			continue;
		tok = JsonbIteratorNext(&it, &val, true);
		if (tok != WJB_VALUE || !relation_ok(&val))
			PG_RETURN_BOOL(false);
	}
	PG_RETURN_BOOL(true);
}

/*
 * rollguard._relation_columns(relation jsonb): one row per column of a
 * manifest relation -- its name, "writes" and "nullable" (true when left
 * out) -- in the relation's key order.  What jsonb_each() and two ->>
 * casts per column did in SQL.  _manifest_columns() calls it only on a
 * manifest _manifest_shape_ok() passed; on anything else it raises.
 */
Datum
rollguard_relation_columns(PG_FUNCTION_ARGS)
{
	Jsonb	   *rel = PG_GETARG_JSONB_P(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	JsonbIterator *it;
	JsonbValue	k;
	JsonbValue	v;
	JsonbIteratorToken tok;

	InitMaterializedSRF(fcinfo, 0);
	if (!JB_ROOT_IS_OBJECT(rel))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a manifest relation must be a JSON object")));
	it = JsonbIteratorInit(&rel->root);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};
		bool		writes = true;
		bool		nullable = true;

		if (tok != WJB_KEY)
			continue;
		tok = JsonbIteratorNext(&it, &v, true);
		if (tok != WJB_VALUE || !column_ok(&v))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("column \"%.*s\" of a manifest relation is not an object of boolean \"writes\" and \"nullable\"",
							Min(k.val.string.len, NAMEDATALEN), k.val.string.val)));
		{
			JsonbIterator *cit = JsonbIteratorInit(v.val.binary.data);
			JsonbValue	ck;
			JsonbValue	cv;

			while ((tok = JsonbIteratorNext(&cit, &ck, true)) != WJB_DONE)
			{
				if (tok != WJB_KEY)
					continue;
				(void) JsonbIteratorNext(&cit, &cv, true);
				if (key_is(&ck, "writes"))
					writes = cv.val.boolean;
				else
					nullable = cv.val.boolean;
			}
		}
		values[0] = PointerGetDatum(cstring_to_text_with_len(k.val.string.val, k.val.string.len));
		values[1] = BoolGetDatum(writes);
		values[2] = BoolGetDatum(nullable);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* "schema.name", neither part empty nor longer than 63 bytes */
static bool
qualified_ok(const JsonbValue *k)
{
	const char *dot;
	int			nsplen;

	if (k->type != jbvString)
		return false;
	dot = memchr(k->val.string.val, '.', k->val.string.len);
	if (dot == NULL)
		return false;
	nsplen = dot - k->val.string.val;
	return nsplen > 0 && nsplen < NAMEDATALEN &&
		k->val.string.len - nsplen - 1 > 0 &&
		k->val.string.len - nsplen - 1 < NAMEDATALEN;
}

/* a column object that spells out both properties */
static bool
column_explicit(const JsonbValue *v)
{
	return column_ok(v) && JsonContainerSize(v->val.binary.data) == 2;
}

/*
 * rollguard._manifest_is_normal(manifest jsonb): true when the manifest is
 * what rollguard._normalize_manifest() would make of it: {"relations": ...}
 * and nothing else, every relation named "schema.name" (split at the first
 * dot, both parts 1 to 63 bytes) and a non-empty object, every column name
 * 1 to 63 bytes, every column {"writes": bool, "nullable": bool} with both.
 * Such a manifest is valid (it passes every check of _manifest_columns()),
 * and its normal form is itself (jsonb orders and deduplicates keys): what
 * the generators (contrib/) write, so register_version() expands it once,
 * not twice.  False says nothing: it is normalized the long way.
 */
Datum
rollguard_manifest_is_normal(PG_FUNCTION_ARGS)
{
	Jsonb	   *manifest = PG_GETARG_JSONB_P(0);
	JsonbIterator *it;
	JsonbValue	k;
	JsonbValue	v;
	JsonbIteratorToken tok;
	JsonbValue	rels;
	bool		found = false;

	if (!JB_ROOT_IS_OBJECT(manifest) || JB_ROOT_COUNT(manifest) != 1)
		PG_RETURN_BOOL(false);
	it = JsonbIteratorInit(&manifest->root);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		if (tok != WJB_KEY)
			continue;
		tok = JsonbIteratorNext(&it, &v, true);
		if (tok != WJB_VALUE || !key_is(&k, "relations") ||
			v.type != jbvBinary || !JsonContainerIsObject(v.val.binary.data))
			PG_RETURN_BOOL(false);
		rels = v;
		found = true;
	}
	if (!found)
		PG_RETURN_BOOL(false);

	it = JsonbIteratorInit(rels.val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		JsonbIterator *rit;
		JsonbValue	ck;
		JsonbValue	cv;

		if (tok != WJB_KEY)
			continue;
		tok = JsonbIteratorNext(&it, &v, true);
		if (tok != WJB_VALUE || !qualified_ok(&k) || !relation_ok(&v))
			PG_RETURN_BOOL(false);
		rit = JsonbIteratorInit(v.val.binary.data);
		while ((tok = JsonbIteratorNext(&rit, &ck, true)) != WJB_DONE)
		{
			if (tok != WJB_KEY)
				continue;
			tok = JsonbIteratorNext(&rit, &cv, true);
			if (tok != WJB_VALUE || !column_explicit(&cv))
				PG_RETURN_BOOL(false);
		}
	}
	PG_RETURN_BOOL(true);
}
