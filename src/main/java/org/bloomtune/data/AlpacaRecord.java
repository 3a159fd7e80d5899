package org.bloomtune.data;

/** One instruction example: {@code input} may be empty; {@code where} names its file and record for messages. */
public record AlpacaRecord(String instruction, String input, String output, String where) {}
