/*-------------------------------------------------------------------------
 * manifest.c
 *		The shape of a manifest's relations, checked in one pass: the fast
 *		path of rollguard._manifest_columns() (rollguard--1.7.sql).
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
#include "utils/jsonb.h"

#include "rollguard.h"

PG_FUNCTION_INFO_V1(rollguard_manifest_shape_ok);

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
