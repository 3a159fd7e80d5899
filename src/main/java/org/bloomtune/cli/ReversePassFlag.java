package org.bloomtune.cli;

import org.bloomtune.autograd.ReversePass;
import picocli.CommandLine;

/** {@code --reverse-pass} in any case: "auto", "autograd", "RECOMPUTE_BLOCKS". */
final class ReversePassFlag implements CommandLine.ITypeConverter<ReversePass> {
    @Override
    public ReversePass convert(String value) {
        try {
            return ReversePass.parse(value);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.TypeConversionException("'" + value + "' is not auto, AUTOGRAD or RECOMPUTE_BLOCKS");
        }
    }
}
