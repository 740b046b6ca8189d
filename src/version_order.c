/*-------------------------------------------------------------------------
 * version_order.c
 *		The order of version labels: ICU's root collation with numeric
 *		ordering on, so that 1.9 < 1.10 and release-9 < release-10.
 *
 * One collator per backend, configured before it is cached (setting
 * attributes is not thread-safe; comparing is).  ICU allocates with malloc,
 * outside PostgreSQL's memory contexts: the collator lives as long as the
 * backend.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <unicode/ucol.h>
#include <unicode/ustring.h>

#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include "compat.h"
#include "rollguard.h"

PG_FUNCTION_INFO_V1(rollguard_version_cmp);
PG_FUNCTION_INFO_V1(rollguard_version_sort_key);

static UCollator *version_collator = NULL;

static void
check_icu(UErrorCode status, const char *what)
{
	if (U_FAILURE(status))
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("could not %s: %s", what, u_errorName(status))));
}

static UCollator *
get_collator(void)
{
	if (version_collator == NULL)
	{
		UErrorCode	status = U_ZERO_ERROR;
		UCollator  *coll;

		coll = ucol_open("", &status);
		check_icu(status, "open the ICU root collator");
		ucol_setAttribute(coll, UCOL_NUMERIC_COLLATION, UCOL_ON, &status);
		if (U_FAILURE(status))
		{
			ucol_close(coll);
			check_icu(status, "turn on ICU numeric collation");
		}
		version_collator = coll;
	}
	return version_collator;
}

/* The label as UTF-8 (a no-op in a UTF-8 database). */
static const char *
to_utf8(const char *s, int *len)
{
	char	   *conv = pg_server_to_any(s, *len, PG_UTF8);

	if (conv != s)
		*len = strlen(conv);
	return conv;
}

/* Labels are at most 200 bytes in the registry; ordering far longer text is
 * refused rather than allocated for. */
#define MAX_ORDERED_LABEL (1024 * 1024)

static void
check_length(int len)
{
	if (len > MAX_ORDERED_LABEL)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("version label is too long to order"),
				 errdetail("It is %d bytes long; the limit is %d bytes.", len, MAX_ORDERED_LABEL)));
}

int
rg_version_cmp(const char *a, int alen, const char *b, int blen)
{
	UErrorCode	status = U_ZERO_ERROR;
	UCollationResult r;

	check_length(alen);
	check_length(blen);
	a = to_utf8(a, &alen);
	b = to_utf8(b, &blen);
	r = ucol_strcollUTF8(get_collator(), a, alen, b, blen, &status);
	check_icu(status, "compare version labels");
	return r == UCOL_LESS ? -1 : (r == UCOL_GREATER ? 1 : 0);
}

Datum
rollguard_version_cmp(PG_FUNCTION_ARGS)
{
	text	   *a = PG_GETARG_TEXT_PP(0);
	text	   *b = PG_GETARG_TEXT_PP(1);

	PG_RETURN_INT32(rg_version_cmp(VARDATA_ANY(a), VARSIZE_ANY_EXHDR(a),
								   VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b)));
}

Datum
rollguard_version_sort_key(PG_FUNCTION_ARGS)
{
	text	   *label = PG_GETARG_TEXT_PP(0);
	int			len = VARSIZE_ANY_EXHDR(label);
	const char *utf8;
	UErrorCode	status = U_ZERO_ERROR;
	UChar	   *ubuf;
	int32_t		ulen;
	int32_t		keylen;
	bytea	   *result;

	check_length(len);
	utf8 = to_utf8(VARDATA_ANY(label), &len);

	/* UTF-8 to UTF-16 (at most one UTF-16 unit per UTF-8 byte) */
	ubuf = palloc((len + 1) * sizeof(UChar));
	u_strFromUTF8(ubuf, len + 1, &ulen, utf8, len, &status);
	check_icu(status, "convert a version label to UTF-16");

	keylen = ucol_getSortKey(get_collator(), ubuf, ulen, NULL, 0);
	result = palloc(VARHDRSZ + keylen);
	ucol_getSortKey(get_collator(), ubuf, ulen,
					(uint8_t *) VARDATA(result), keylen);
	/* drop the terminating zero byte ICU appends */
	SET_VARSIZE(result, VARHDRSZ + keylen - 1);
	PG_RETURN_BYTEA_P(result);
}
