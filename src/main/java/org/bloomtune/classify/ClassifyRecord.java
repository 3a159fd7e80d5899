package org.bloomtune.classify;

/**
 * One text to classify, with its label as the data file gives it ({@code null} when unlabelled)
 * and where it came from ({@code file: line 12}) for error messages.
 */
public record ClassifyRecord(String text, String label, String where) {}
