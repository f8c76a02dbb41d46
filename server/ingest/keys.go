package ingest

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	movementv1 "github.com/hookstream/hookstream/gen/hookstream/movement/v1"
	mvmntv1 "github.com/hookstream/hookstream/gen/hookstream/mvmnt/v1"
	"github.com/hookstream/hookstream/server/convert"
)

// Dedup keys. A key that two distinct events share turns the second one's 2xx into silent loss,
// so a key is built only from values that are present and non-empty; when a payload has none,
// its key is a digest of its own exact bytes (hashKey), so that a retry of the same bytes is
// recognised and nothing else is. The forms cannot meet: a digest key always starts with
// "sha256:", which no id-based key of the same provider does.

// hashKey is the key of a payload without a usable id: "sha256:" and the hex of the first 16
// bytes of the SHA-256 of raw.
func hashKey(raw []byte) string {
	sum := sha256.Sum256(raw)
	return "sha256:" + hex.EncodeToString(sum[:16])
}

// moveAPIKey is a Move API webhook's key: its Svix message id, which Svix keeps across retries
// and the schema requires.
func moveAPIKey(webhookID string, raw []byte) string {
	if webhookID == "" {
		return hashKey(raw)
	}
	return webhookID
}

// movementKey is a Movement webhook's key: "<topic>.<event>.<object id>" when the object has an
// id (Movement's ids are positive integers; proto3 reads an absent id as 0), else
// "<topic>.<event>.sha256:<hex>".
func movementKey(w *movementv1.Webhook, raw []byte) string {
	typ := convert.MovementType(w)
	if id, ok := convert.MovementObjectID(w); ok && id > 0 {
		return typ + "." + strconv.FormatInt(id, 10)
	}
	return typ + "." + hashKey(raw)
}

// mvmntKey is an MVMNT item's key: "<event>/<data.id>/<timestamp>" (MVMNT's payload has no event
// id; it retries with the same content), else a digest of the item's own bytes when one of the
// three is absent or empty.
func mvmntKey(item *mvmntv1.DeliveryEvent, raw []byte) string {
	id := item.GetData().GetFields()["id"].GetStringValue()
	if item.GetEvent() == "" || id == "" || item.GetTimestamp() == nil {
		return hashKey(raw)
	}
	ts := item.GetTimestamp().AsTime().UTC().Format(time.RFC3339Nano)
	return item.GetEvent() + "/" + id + "/" + ts
}

// listenerKey is a listener notification's key: "<listener id>/id:<dedup id>" with the value of
// the listener's dedup header, else "<listener id>/sha256:<hex>". listenerID is canonical (lower
// case), so the same notification sent to /…/0b6f… and /…/0B6F… has one key.
func listenerKey(listenerID, dedupID string, raw []byte) string {
	if dedupID != "" {
		return listenerID + "/id:" + dedupID
	}
	return listenerID + "/" + hashKey(raw)
}
