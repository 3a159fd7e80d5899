package org.bloomtune.kernels;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * A system property that sets how a family of kernels multiplies ({@link Bf16Products},
 * {@link Int8Products}): one of the ways' names in any case, or {@code measured} — the kernels'
 * own choice, also what an unset property means.
 */
final class ProductsProperty {
    private ProductsProperty() {}

    /** {@code value}'s way of {@code ways}, or null for {@code measured} or no value; anything else is an error naming {@code property}. */
    static <E extends Enum<E>> E parse(Class<E> ways, String property, String value) {
        if (value == null || value.strip().equalsIgnoreCase("measured")) return null;
        for (E way : ways.getEnumConstants()) if (way.name().equalsIgnoreCase(value.strip())) return way;
        String names = Arrays.stream(ways.getEnumConstants()).map(w -> w.name().toLowerCase(Locale.ROOT)).collect(Collectors.joining(", "));
        throw new IllegalArgumentException("system property " + property + " is '" + value + "'; expected " + names + " or measured");
    }
}
