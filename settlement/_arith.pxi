# Exact int64 arithmetic of the kernel, written in C: products with an __int128 fallback,
# rounding half away from zero, ceiling division and overflow-checked sums.
# Included by _core.pyx.

cdef extern from *:
    """
    #include <stdint.h>

    #ifndef SETTLEMENT_DEBUG
    #define SETTLEMENT_DEBUG 0
    #endif

    #define SK_AMOUNT_NOT_GIVEN INT64_MIN

    /* Slow path of sk_mul_div_round: the product or the rounding step left int64. */
    static __attribute__((noinline, cold)) int
    sk_mul_div_round_wide(int64_t a, int64_t b, int64_t d, int64_t *out)
    {
        __int128 p = (__int128)a * (__int128)b;
        __int128 half = d / 2;
        __int128 q = p >= 0 ? (p + half) / d : -((-p + half) / d);
        if (q > INT64_MAX || q < INT64_MIN) {
            return 1;
        }
        *out = (int64_t)q;
        return 0;
    }

    /* a * b / d rounded half away from zero, d > 0; returns 1 when the result leaves int64.
       Adding half of d before truncating rounds halves up for odd and even d alike. */
    static inline int
    sk_mul_div_round(int64_t a, int64_t b, int64_t d, int64_t *out)
    {
        int64_t p;
        int64_t half = d / 2;
        if (!__builtin_mul_overflow(a, b, &p)) {
            if (p >= 0 && p <= INT64_MAX - half) {
                *out = (p + half) / d;
                return 0;
            }
            if (p < 0 && p >= -(INT64_MAX - half)) {
                *out = -((-p + half) / d);
                return 0;
            }
        }
        return sk_mul_div_round_wide(a, b, d, out);
    }

    /* ceil(a * b / d) for a >= 0, b >= 0, d > 0; returns 1 when the result leaves int64. */
    static inline int
    sk_mul_div_ceil(int64_t a, int64_t b, int64_t d, int64_t *out)
    {
        int64_t p;
        if (!__builtin_mul_overflow(a, b, &p) && p <= INT64_MAX - (d - 1)) {
            *out = (p + d - 1) / d;
            return 0;
        }
        __int128 w = ((__int128)a * (__int128)b + (d - 1)) / d;
        if (w > INT64_MAX) {
            return 1;
        }
        *out = (int64_t)w;
        return 0;
    }

    static inline int sk_add(int64_t a, int64_t b, int64_t *out)
    {
        return __builtin_add_overflow(a, b, out);
    }

    static inline int sk_sub(int64_t a, int64_t b, int64_t *out)
    {
        return __builtin_sub_overflow(a, b, out);
    }
    """
    const bint SETTLEMENT_DEBUG
    const int64_t SK_AMOUNT_NOT_GIVEN
    int sk_mul_div_round(int64_t a, int64_t b, int64_t d, int64_t* out) nogil
    int sk_mul_div_ceil(int64_t a, int64_t b, int64_t d, int64_t* out) nogil
    int sk_add(int64_t a, int64_t b, int64_t* out) nogil
    int sk_sub(int64_t a, int64_t b, int64_t* out) nogil
